"""The per-operator-type summary under the module table: where the cost goes by op."""

from __future__ import annotations

from rich import box
from rich.table import Table

from modelmeter.render._common import percent
from modelmeter.render.capture import plain
from modelmeter.report import Report
from modelmeter.units import format_bytes, format_count

OP_COLUMNS = ("Operator", "Calls", "MACs", "FLOPs", "Bytes", "% FLOPs")
MAX_OPS = 12


def operator_cells(report: Report) -> list[tuple[str, ...]]:
    """One row per operator type, most FLOPs first (``report.by_operator()``); bytes are read
    plus written; the share is of the model's FLOPs. Past MAX_OPS the rest is one row."""
    stats = list(report.by_operator().items())
    total = report.total().cost.flops
    out = []
    for op, st in stats[:MAX_OPS]:
        c = st.cost
        out.append(
            (
                op,
                str(st.calls),
                format_count(c.macs),
                format_count(c.flops),
                format_bytes(c.bytes_read + c.bytes_written),
                percent(c.flops, total),
            )
        )
    rest = stats[MAX_OPS:]
    if rest:
        calls = sum(st.calls for _, st in rest)
        macs = sum(st.cost.macs for _, st in rest)
        flops = sum(st.cost.flops for _, st in rest)
        moved = sum(st.cost.bytes_read + st.cost.bytes_written for _, st in rest)
        out.append(
            (
                f"{len(rest)} other ops",
                str(calls),
                format_count(macs),
                format_count(flops),
                format_bytes(moved),
                percent(flops, total),
            )
        )
    return out


def operator_table(report: Report) -> Table:
    """The summary as a compact rich table (numbers never shrink; long op names may)."""
    cells = operator_cells(report)
    table = Table(box=box.SIMPLE, title="by operator type", title_justify="left")
    for i, col in enumerate(OP_COLUMNS):
        longest = max([len(col)] + [len(r[i]) for r in cells])
        table.add_column(
            col,
            justify="left" if i == 0 else "right",
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if i == 0 else longest,
        )
    for row in cells:
        table.add_row(*plain(*row))
    return table
