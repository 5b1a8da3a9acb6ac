"""One CSV row per module row, integer values, subtree totals and the row's own (self) cost;
the root row is named by the model's label, as in the table and Markdown.

The rows are the table's (``table_rows.view_rows``): identical repeated blocks are one row
named ``layers.0..11`` whose figures are the SUM over the ``blocks`` (the last column) unless
the view says not to collapse; ``sort`` orders siblings; ``top`` gives the flat list of
hotspots, whose totals and self columns both hold the row's own cost at the depth. ``columns``
(``--columns``) keeps the fields of the table's columns chosen (``render.column_choice``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelmeter.render._common import format_shapes
from modelmeter.render.column_choice import CSV_OWNER, pick, shown
from modelmeter.render.table_rows import (
    DEFAULT_VIEW,
    TableView,
    qualified_label,
    row_time,
    view_rows,
)
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
TAIL = ("blocks",)  # last: how many identical modules the row sums (1: one module)


def render_csv(
    report: Report,
    depth: int | None = None,
    roofline: Roofline | None = None,
    view: TableView = DEFAULT_VIEW,
    columns: Sequence[str] | None = None,
) -> str:
    """The rows of ``view`` at ``depth``: ``params`` and the cost columns are subtree totals,
    ``self_*`` the row's own share (a row cut at ``depth`` has its subtree in the totals)."""
    shares = _shares(roofline, columns)
    header = HEADER + (ROOFLINE_HEADER if roofline is not None else ()) + shares + TAIL
    idx = shown(header, CSV_OWNER, columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(pick(header, idx))
    own_params = {n.name: n.own.params for n in report.modules()}
    total_flops = report.total().cost.flops
    for row in view_rows(report, depth, roofline, view):
        total, own = row.total_cost, row.self_cost
        extra: tuple[object, ...] = ()
        if roofline is not None:
            rt = row_time(roofline, row).to_dict()
            extra = tuple(rt[k] for k in ROOFLINE_HEADER)
        if "flops_share" in shares:
            extra += (total.flops / total_flops if total_flops else 0.0,)
        if "time_share" in shares and roofline is not None:
            lat = roofline.latency_s
            extra += (row_time(roofline, row).latency_s / lat if lat else 0.0,)
        self_params = (
            row.params if view.top is not None else sum(own_params[m] for m in row.members)
        )
        cells = (
            qualified_label(report, row, times=False),
            row.type,
            row.depth,
            row.calls,
            row.params,
            *(getattr(total, f) for f in COST_FIELDS),
            format_shapes(row.output_shapes, limit=None).replace(", ", ";"),
            self_params,
            *(getattr(own, f) for f in COST_FIELDS),
            *extra,
            row.scale,
        )
        writer.writerow(pick(cells, idx))
    return buf.getvalue()


def _shares(roofline: Roofline | None, columns: Sequence[str] | None) -> tuple[str, ...]:
    """The share fields asked for by ``--columns`` (pct; time with a chip)."""
    chosen = columns or ()
    return (("flops_share",) if "pct" in chosen else ()) + (
        ("time_share",) if "time" in chosen and roofline is not None else ()
    )
