"""The human report: a module tree table, the totals, and what was not counted.

``render_table`` gives fixed-width colourless text (tests, files); ``print_table`` prints the
same renderables to a rich console (colour on a terminal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelmeter.render._common import (
    convention_text,
    dtype_label,
    format_inputs,
    format_shapes,
    peak_live_scope,
    percent,
)
from modelmeter.render.capture import AtLeast, plain, to_text
from modelmeter.render.experts import active_params_text
from modelmeter.render.roofline_summary import roofline_lines
from modelmeter.render.table_layout import fit, table_width
from modelmeter.render.table_ops import operator_table
from modelmeter.render.table_rows import TableRow, TableView, row_time, view_rows
from modelmeter.report import Report
from modelmeter.units import (
    format_bytes,
    format_count,
    format_params,
    format_seconds,
)

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

DEFAULT_WIDTH = 160
WARN = "bold red"
DEFAULT_VIEW = TableView()

COLUMNS = (
    "Module",
    "Type",
    "Calls",
    "Params",
    "MACs",
    "Self MACs",
    "FLOPs",
    "Bytes read",
    "Bytes written",
    "Output shape",
    "% FLOPs",
)
# Added after COLUMNS when a roofline is given (--hardware).
ROOFLINE_COLUMNS = ("Latency", "Bound", "% time")


def table_cells(
    report: Report,
    depth: int | None = None,
    roofline: Roofline | None = None,
    *,
    collapse: bool = True,
    sort: str | None = None,
    top: int | None = None,
) -> list[tuple[str, ...]]:
    """The text of every body cell of the module table, one tuple per row of
    ``table_rows(...)`` (or its ``hotspots`` with ``top``), in the order of
    ``table_columns(roofline, flat=top is not None)``. Each tree row shows its subtree total
    and its own cost (Self MACs); a hotspot row shows its own cost at the depth."""
    rows = view_rows(report, depth, roofline, TableView(collapse=collapse, sort=sort, top=top))
    total_flops = report.total().cost.flops
    out = []
    for row in rows:
        c = row.total_cost
        cells = {
            "Module": row.label if top is not None else row.guides + row.label,
            "Type": row.type,
            "Calls": str(row.calls),
            "Params": format_params(row.params),
            "MACs": format_count(c.macs),
            "Self MACs": format_count(row.self_cost.macs),
            "FLOPs": format_count(c.flops),
            "Bytes read": format_bytes(c.bytes_read),
            "Bytes written": format_bytes(c.bytes_written),
            "Output shape": format_shapes(row.output_shapes),
            "% FLOPs": percent(c.flops, total_flops),
        }
        if roofline is not None:
            cells.update(zip(ROOFLINE_COLUMNS, roofline_cells(roofline, row)))
        out.append(tuple(cells[k] for k in table_columns(roofline, flat=top is not None)))
    return out


def table_columns(roofline: Roofline | None = None, flat: bool = False) -> tuple[str, ...]:
    """The header of the module table (with a roofline: no output shapes, three more; flat
    hotspots: no Self MACs, every figure is already the module's own)."""
    cols = COLUMNS if not flat else tuple(c for c in COLUMNS if c != "Self MACs")
    if roofline is None:
        return cols
    return tuple(c for c in cols if c != "Output shape") + ROOFLINE_COLUMNS


def roofline_cells(roofline: Roofline, row: str | TableRow) -> tuple[str, str, str]:
    """(latency, bound, % of the model's time) of a row (or module ``name``'s subtree)."""
    if isinstance(row, str):
        mt = roofline.modules[row]
        lat, bound = mt.latency_s, mt.bound
    else:
        mt = row_time(roofline, row)
        lat, bound = mt.latency_s, mt.bound
    share = 100.0 * lat / roofline.latency_s if roofline.latency_s else 0.0
    return format_seconds(lat), bound, f"{share:.1f}%"



def module_table(
    report: Report,
    depth: int | None = None,
    roofline: Roofline | None = None,
    width: int = DEFAULT_WIDTH,
    columns: Sequence[str] | None = None,
    view: TableView = DEFAULT_VIEW,
) -> RenderableType:
    """The module tree as a rich table fitted to ``width`` (see ``table_layout.fit``: columns
    are dropped and names shortened, numbers are never cut); ``columns`` chooses them."""
    shown = "all levels" if depth is None else f"depth {depth}"
    if view.top is not None:
        shown += f" · top {view.top} by own {view.sort or 'macs'} (less the rows below it)"
    elif view.sort is not None:
        shown += f" · sorted by {view.sort}"
    cells = table_cells(
        report, depth, roofline, collapse=view.collapse, sort=view.sort, top=view.top
    )
    if view.collapse and any(" ×" in row[0] for row in cells):
        shown += " · ×N: N identical blocks, figures summed"
    table = Table(
        title=Text(
            f"{report.model} · {report.frontend} · {report.mode} · "
            f"convention {report.convention} · {shown}"
        ),
        box=box.ROUNDED,
        header_style="bold",
        title_style="bold",
    )
    layout = fit(table_columns(roofline, flat=view.top is not None), cells, width, columns)
    for col, head in zip(layout.columns, layout.headers):
        numeric = col not in ("Module", "Type", "Output shape", "Bound")
        longest = max([len(head)] + [len(r[len(table.columns)]) for r in layout.rows])
        table.add_column(
            head,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=longest if numeric else None,
        )
    for i, cells in enumerate(layout.rows):
        table.add_row(*plain(*cells), style="bold" if i == 0 else None)
    needed = table_width(layout.headers, layout.rows)  # the fewest columns still too wide:
    return AtLeast(table, needed) if needed > width else table  # wider lines, numbers whole


def totals_lines(report: Report) -> list[tuple[str, str]]:
    """(label, value) lines of the totals block."""
    t = report.total()
    c = t.cost
    frozen = t.params - t.trainable_params
    sizes = report.size_by_dtype()
    size_text = " · ".join(f"{dtype_label(k)} {format_bytes(v)}" for k, v in sizes.items())
    lines = [
        ("inputs", format_inputs(report)),
        (
            "params",
            f"{format_params(t.params)} ({t.params:,}): trainable {t.trainable_params:,} · "
            f"frozen {frozen:,} · buffers {t.buffers:,} · "
            f"unused {t.unused_params:,} (never read in the traced forward)",
        ),
        ("model size", size_text),
        ("MACs", f"{format_count(c.macs)} ({c.macs:,})"),
        ("FLOPs", f"{format_count(c.flops)} ({c.flops:,}); {convention_text(report.convention)}"),
        (
            "bytes read",
            f"{format_bytes(c.bytes_read)} ({c.bytes_read:,}): activations "
            f"{format_bytes(c.activation_bytes_read)} · weights {format_bytes(c.weight_bytes)}",
        ),
        ("bytes written", f"{format_bytes(c.bytes_written)} ({c.bytes_written:,})"),
        (
            "arithmetic intensity",
            f"{c.arithmetic_intensity:.2f} FLOP/B (FLOPs / (bytes read + written), unfused)",
        ),
        (
            "activation memory",
            f"{format_bytes(t.activation_bytes)} (sum of op outputs) · "
            f"peak live {format_bytes(t.peak_activation_bytes)}{peak_live_scope(report)}",
        ),
        (
            "mode",
            report.mode
            + (
                " (meta tensors: shapes only, no weight memory)"
                if report.mode == "meta"
                else " (real tensors)"
            ),
        ),
    ]
    active = active_params_text(report)
    if active:
        lines.insert(2, ("active params", active))
    if report.phases and report.phases != ["forward"]:
        for phase in report.phases:
            pc = report.total(phase).cost
            lines.append(
                (
                    f"  {phase}",
                    f"MACs {format_count(pc.macs)} · FLOPs {format_count(pc.flops)} · "
                    f"read {format_bytes(pc.bytes_read)} · written {format_bytes(pc.bytes_written)}",
                )
            )
    for note in report.notes:
        lines.append(("note", note))
    return lines


def totals_grid(report: Report, roofline: Roofline | None = None) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in totals_lines(report):
        grid.add_row(*plain(label, value))
    if roofline is not None:
        for label, value in roofline_lines(roofline):
            warn = label == "hardware" and not roofline.spec.verified
            grid.add_row(*plain(label, Text(value, style=WARN) if warn else value))
    return grid


def unsupported_block(report: Report) -> RenderableType:
    missing = report.unsupported
    if not missing:
        return Text("coverage: every op was counted or is declared zero-cost", style="green")
    calls = sum(missing.values())
    title = Text(
        f"NOT COUNTED: {len(missing)} unsupported op(s), {calls} call(s); "
        "their cost is missing from every figure above",
        style=WARN,
    )
    table = Table(box=box.SIMPLE, header_style=WARN)
    table.add_column("Operator", style=WARN, no_wrap=True)
    table.add_column("Calls", justify="right", style=WARN)
    for op, n in missing.items():
        table.add_row(*plain(op, str(n)))
    return Group(title, table)


def table_renderables(
    report: Report,
    depth: int | None = None,
    roofline: Roofline | None = None,
    width: int = DEFAULT_WIDTH,
    columns: Sequence[str] | None = None,
    view: TableView = DEFAULT_VIEW,
) -> list[RenderableType]:
    return [
        module_table(report, depth, roofline, width, columns, view),
        operator_table(report),
        totals_grid(report, roofline),
        Text(""),
        unsupported_block(report),
    ]


def print_table(
    report: Report,
    depth: int | None = None,
    console: Console | None = None,
    roofline: Roofline | None = None,
    columns: Sequence[str] | None = None,
    view: TableView = DEFAULT_VIEW,
) -> None:
    """Print the report to a rich console (colour when it is a terminal), fitted to its width."""
    console = console or Console()
    parts = table_renderables(report, depth, roofline, console.width, columns, view)
    console.print(Group(*parts), crop=False)


def render_table(
    report: Report,
    depth: int | None = None,
    width: int = DEFAULT_WIDTH,
    color: bool = False,
    roofline: Roofline | None = None,
    columns: Sequence[str] | None = None,
    view: TableView = DEFAULT_VIEW,
) -> str:
    """The table as text at a fixed width; without colour it is plain and deterministic."""
    renderables = table_renderables(report, depth, roofline, width, columns, view)
    return to_text(Group(*renderables), width, color=color)
