"""Every output modelmeter shows or writes: pure functions of a result (they never change it).

One renderer per result type, each ``render_THING(subject..., fmt, *, options) -> str`` with
its formats declared in :mod:`modelmeter.render.formats`: :func:`render_report` (a Report,
optionally with its Roofline), ``render.measure.render_measure``,
``render.utilization.render_utilization``, ``render.hardware.render_hardware_list`` and
``render_hardware_show``, ``render.ops.render_ops``, ``render.calibration.render_calibration``,
``render.compare.render_comparison`` (several models side by side);
charts in ``render.plots`` and ``render.class_plot``. :mod:`modelmeter.render.emit` writes
them (``-`` is standard output). No counting, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelmeter.render.csvfmt import render_csv
from modelmeter.render.formats import REPORT_FORMATS, unknown_format
from modelmeter.render.jsonfmt import render_json
from modelmeter.render.markdown import render_markdown
from modelmeter.render.table import DEFAULT_VIEW, DEFAULT_WIDTH, print_table, render_table
from modelmeter.render.table_rows import TableView
from modelmeter.report import Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

FORMATS = REPORT_FORMATS


def render_report(
    report: Report,
    fmt: str = "table",
    *,
    depth: int | None = None,
    width: int = DEFAULT_WIDTH,
    color: bool = False,
    roofline: Roofline | None = None,
    columns: Sequence[str] | None = None,
    view: TableView = DEFAULT_VIEW,
) -> str:
    """The report as text in one of ``REPORT_FORMATS``. ``depth`` and ``view`` (identical
    blocks collapsed, siblings sorted, the top hotspots) apply to table, csv and md alike, which
    show the same rows; ``columns`` -- keys such as ``("params", "macs")`` -- chooses the
    columns of all three (``render.column_choice``); ``width`` and ``color`` apply to the
    table, which fits its width by dropping low-priority columns, never by cutting a number.
    JSON always holds every module.

    With ``roofline`` (``modelmeter.roofline(report, spec)``) every format adds the predicted
    latency, bound and utilization per module and for the model. ``html`` is one
    self-contained page (``render.html_report``) of every module, folding and sorting in the
    browser."""
    if fmt == "table":
        return render_table(
            report, depth, width=width, color=color, roofline=roofline, columns=columns, view=view
        )
    if fmt == "json":
        return render_json(report, roofline)
    if fmt == "csv":
        return render_csv(report, depth, roofline, view, columns)
    if fmt == "md":
        return render_markdown(report, depth, roofline, view, columns)
    if fmt == "html":  # every module, whatever the depth: the page folds and sorts them
        from modelmeter.render.html_report import render_html_report

        return render_html_report(report, roofline, collapse=view.collapse)
    raise unknown_format(fmt, REPORT_FORMATS)


__all__ = [
    "FORMATS",
    "DEFAULT_WIDTH",
    "render_report",
    "render_table",
    "print_table",
    "render_json",
    "render_csv",
    "render_markdown",
]
