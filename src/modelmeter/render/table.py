"""The human report: a module tree table, the totals, and what was not counted.

``render_table`` gives fixed-width colourless text (tests, files); ``print_table`` prints the
same renderables to a rich console (colour on a terminal).
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelmeter.render._common import (
    convention_text,
    dtype_label,
    format_inputs,
    format_shapes,
    parents,
    percent,
    relative_name,
    row_label,
    tree_prefixes,
)
from modelmeter.report import Report
from modelmeter.units import format_bytes, format_count

DEFAULT_WIDTH = 160
WARN = "bold red"

COLUMNS = (
    "Module",
    "Type",
    "Calls",
    "Params",
    "MACs",
    "FLOPs",
    "Bytes read",
    "Bytes written",
    "Output shape",
    "% FLOPs",
)


def table_cells(report: Report, depth: int | None = None) -> list[tuple[str, ...]]:
    """The text of every body cell of the module table, one tuple per row of
    ``report.by_module(depth)``. Each row shows its subtree total."""
    rows = report.by_module(depth)
    prefix = tree_prefixes(report.root, depth)
    up = parents(report.root)
    total_flops = report.total().cost.flops
    out = []
    for row in rows:
        if row.depth == 0:
            name = row_label(report, row)
        else:
            name = prefix.get(id(row.node), "") + relative_name(up.get(id(row.node)), row.node)
        c = row.total_cost
        out.append(
            (
                name,
                row.type,
                str(row.calls),
                format_count(row.params),
                format_count(c.macs),
                format_count(c.flops),
                format_bytes(c.bytes_read),
                format_bytes(c.bytes_written),
                format_shapes(row.output_shapes),
                percent(c.flops, total_flops),
            )
        )
    return out


def module_table(report: Report, depth: int | None = None) -> Table:
    shown = "all levels" if depth is None else f"depth {depth}"
    table = Table(
        title=(
            f"{report.model} · {report.frontend} · {report.mode} · "
            f"convention {report.convention} · {shown}"
        ),
        box=box.ROUNDED,
        header_style="bold",
        title_style="bold",
    )
    for i, col in enumerate(COLUMNS):
        numeric = 2 <= i <= 7 or i == 9
        table.add_column(
            col,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=48 if col == "Module" else (28 if col in ("Type", "Output shape") else None),
        )
    for i, cells in enumerate(table_cells(report, depth)):
        table.add_row(*cells, style="bold" if i == 0 else None)
    return table


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
            f"{format_count(t.params)} ({t.params:,}): trainable {t.trainable_params:,} · "
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
            f"peak live {format_bytes(t.peak_activation_bytes)}",
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


def totals_grid(report: Report) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in totals_lines(report):
        grid.add_row(label, value)
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
        table.add_row(op, str(n))
    return Group(title, table)


def table_renderables(report: Report, depth: int | None = None) -> list[RenderableType]:
    return [module_table(report, depth), totals_grid(report), Text(""), unsupported_block(report)]


def print_table(report: Report, depth: int | None = None, console: Console | None = None) -> None:
    """Print the report to a rich console (colour when it is a terminal)."""
    console = console or Console()
    console.print(Group(*table_renderables(report, depth)))


def render_table(
    report: Report, depth: int | None = None, width: int = DEFAULT_WIDTH, color: bool = False
) -> str:
    """The table as text at a fixed width; without colour it is plain and deterministic."""
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        color_system="truecolor" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={},
    )
    print_table(report, depth, console)
    lines = buf.getvalue().splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"
