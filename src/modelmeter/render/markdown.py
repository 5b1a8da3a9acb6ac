"""A GitHub-flavoured Markdown report: the module rows (exact integers) and the totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelmeter.analysis.experts import experts_summary
from modelmeter.render._common import (
    convention_text,
    dtype_label,
    format_inputs,
    format_shapes,
    peak_live_scope,
    percent,
)
from modelmeter.render.column_choice import MD_OWNER, pick
from modelmeter.render.column_choice import shown as shown_columns
from modelmeter.render.table import ROOFLINE_COLUMNS, roofline_cells, roofline_lines
from modelmeter.render.table_rows import DEFAULT_VIEW, TableView, qualified_label, view_rows
from modelmeter.report import Report
from modelmeter.units import format_bytes, format_count, format_params

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

HEADER = (
    "Module",
    "Depth",
    "Type",
    "Calls",
    "Params",
    "MACs",
    "FLOPs",
    "Self MACs",
    "Self FLOPs",
    "Bytes read",
    "Bytes written",
    "Output shape",
    "% FLOPs",
)
_RIGHT = set(HEADER) - {"Module", "Type", "Output shape"}  # numeric columns


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _line(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_markdown(
    report: Report,
    depth: int | None = None,
    roofline: Roofline | None = None,
    view: TableView = DEFAULT_VIEW,
    columns: Sequence[str] | None = None,
) -> str:
    """The module rows of ``view`` at ``depth`` (the table's: identical blocks one row ``×N``
    summed, siblings sorted, or the top hotspots; totals of each subtree, plus the row's own
    MACs and FLOPs), then the totals and anything not counted. With a roofline, each row also
    shows its predicted latency, bound and share of time, and a roofline section follows.
    ``columns`` (``--columns``) keeps the table's columns chosen (``render.column_choice``)."""
    out = _module_section(report, depth, roofline, view, columns)
    out += ["", "## Totals", "", "| Quantity | Value | |", "|---|---:|---|"]
    out += [_line(r) for r in totals_rows(report)]
    if roofline is not None:
        out += ["", "## Roofline", "", "| Quantity | Value |", "|---|---|"]
        out += [_line(r) for r in roofline_lines(roofline)]
    return "\n".join(out + _closing_lines(report)) + "\n"


def _module_section(
    report: Report,
    depth: int | None,
    roofline: Roofline | None,
    view: TableView,
    columns: Sequence[str] | None = None,
) -> list[str]:
    """The title, the lead paragraph and the module table."""
    full = HEADER + (ROOFLINE_COLUMNS if roofline is not None else ())
    idx = shown_columns(full, MD_OWNER, columns)
    header = pick(full, idx)
    right = _RIGHT | ({"Latency", "% time"} if roofline is not None else set())
    total_flops = report.total().cost.flops
    rows = view_rows(report, depth, roofline, view)
    shown = "all levels" if depth is None else f"depth {depth}"
    if view.top is not None:
        shown += (
            f", the top {view.top} by own {view.sort or 'macs'} (each row less the rows "
            "below it, so all of them add up to the model; Self = the row's figures)"
        )
    elif view.sort is not None:
        shown += f", siblings sorted by {view.sort}"
    if any(r.scale > 1 for r in rows):
        shown += ", ×N: N identical blocks, figures summed"
    out = [
        f"# {_cell(report.model)}",
        "",
        f"Frontend {report.frontend} · mode {report.mode} · convention {report.convention} · "
        f"inputs {format_inputs(report)} · modules to {shown}. "
        + (
            "Each row shows its whole subtree; *Self* columns show the module's own ops."
            if view.top is None
            else "Each row shows its own cost at the depth."
        ),
        "",
        _line([str(h) for h in header]),
        "|" + "|".join("---:" if h in right else "---" for h in header) + "|",
    ]
    for row in rows:
        tc, sc = row.total_cost, row.self_cost
        cells = (
            qualified_label(report, row),
            str(row.depth),
            row.type,
            str(row.calls),
            f"{row.params:,}",
            f"{tc.macs:,}",
            f"{tc.flops:,}",
            f"{sc.macs:,}",
            f"{sc.flops:,}",
            f"{tc.bytes_read:,}",
            f"{tc.bytes_written:,}",
            format_shapes(row.output_shapes),
            percent(tc.flops, total_flops),
        ) + (roofline_cells(roofline, row) if roofline is not None else ())
        out.append(_line([str(c) for c in pick(cells, idx)]))
    return out


def totals_rows(report: Report) -> list[tuple[str, str, str]]:
    """(quantity, exact value, readable value) rows of the totals table."""
    t = report.total()
    c = t.cost
    sizes = report.size_by_dtype()
    moe = experts_summary(report)
    active = (
        []
        if moe is None
        else [
            (
                "active params per token (every token to its top-k experts)",
                f"{moe.active_params:,}",
                format_params(moe.active_params),
            )
        ]
    )
    return [
        ("params", f"{t.params:,}", format_params(t.params)),
        *active,
        ("trainable params", f"{t.trainable_params:,}", format_params(t.trainable_params)),
        ("frozen params", f"{t.params - t.trainable_params:,}", ""),
        ("buffers", f"{t.buffers:,}", format_count(t.buffers)),
        ("unused params (never read in the traced forward)", f"{t.unused_params:,}", ""),
        ("MACs", f"{c.macs:,}", format_count(c.macs)),
        ("FLOPs", f"{c.flops:,}", f"{format_count(c.flops)}; {convention_text(report.convention)}"),
        ("bytes read", f"{c.bytes_read:,}", format_bytes(c.bytes_read)),
        (
            "bytes read: activations",
            f"{c.activation_bytes_read:,}",
            format_bytes(c.activation_bytes_read),
        ),
        ("bytes read: weights", f"{c.weight_bytes:,}", format_bytes(c.weight_bytes)),
        ("bytes written", f"{c.bytes_written:,}", format_bytes(c.bytes_written)),
        ("arithmetic intensity (FLOP/B)", f"{c.arithmetic_intensity:.2f}", "unfused"),
        (
            "activation memory (sum of op outputs)",
            f"{t.activation_bytes:,}",
            format_bytes(t.activation_bytes),
        ),
        (
            "peak live activation memory" + peak_live_scope(report),
            f"{t.peak_activation_bytes:,}",
            format_bytes(t.peak_activation_bytes),
        ),
        *((f"model size {dtype_label(k)}", f"{v:,}", format_bytes(v)) for k, v in sizes.items()),
    ]


def _closing_lines(report: Report) -> list[str]:
    """Phases, notes, and what was not counted (or that everything was)."""
    out: list[str] = []
    if report.phases and report.phases != ["forward"]:
        out += ["", f"Phases: {', '.join(report.phases)}."]
    if report.notes:
        out += ["", "## Notes", ""]
        out += [f"- {n}" for n in report.notes]
    missing = report.unsupported
    out += [""]
    if missing:
        out += [
            f"## NOT COUNTED: {len(missing)} unsupported op(s), {sum(missing.values())} call(s)",
            "",
            "Their cost is missing from every figure above.",
            "",
            "| Operator | Calls |",
            "|---|---:|",
        ]
        out += [_line((op, str(n))) for op, n in missing.items()]
    else:
        out += ["Coverage: every op was counted or is declared zero-cost."]
    return out
