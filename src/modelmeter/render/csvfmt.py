"""One CSV row per module row, integer values, subtree totals and the row's own (self) cost;
the root row is named by the model's label, as in the table and Markdown."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from modelmeter.render._common import format_shapes, row_label
from modelmeter.report import Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

COST_FIELDS = ("macs", "flops", "bytes_read", "bytes_written", "weight_bytes")
HEADER = (
    "name",
    "type",
    "depth",
    "calls",
    "params",
    *COST_FIELDS,
    "output_shapes",
    "self_params",
    *(f"self_{f}" for f in COST_FIELDS),
)
# Appended with a roofline (--hardware): the subtree's predicted times, in seconds.
ROOFLINE_HEADER = (
    "latency_s",
    "compute_s",
    "memory_s",
    "overhead_s",
    "bound",
    "arithmetic_intensity",
    "utilization",
)


def render_csv(report: Report, depth: int | None = None, roofline: Roofline | None = None) -> str:
    """Rows of ``report.by_module(depth)``: ``params`` and the cost columns are subtree totals,
    ``self_*`` the module's own share (a row cut at ``depth`` has its subtree in the totals)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER + (ROOFLINE_HEADER if roofline is not None else ()))
    for row in report.by_module(depth):
        total, own = row.total_cost, row.self_cost
        extra: tuple[object, ...] = ()
        if roofline is not None:
            rt = roofline.modules[row.name].to_dict()
            extra = tuple(rt[k] for k in ROOFLINE_HEADER)
        writer.writerow(
            (
                row_label(report, row),
                row.type,
                row.depth,
                row.calls,
                row.params,
                *(getattr(total, f) for f in COST_FIELDS),
                format_shapes(row.output_shapes, limit=None).replace(", ", ";"),
                row.node.own.params,
                *(getattr(own, f) for f in COST_FIELDS),
                *extra,
            )
        )
    return buf.getvalue()
