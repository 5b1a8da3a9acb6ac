"""Renderers: pure functions of a Report (they never change it). No counting, no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.csvfmt import render_csv
from modelmeter.render.jsonfmt import render_json
from modelmeter.render.markdown import render_markdown
from modelmeter.render.table import DEFAULT_WIDTH, print_table, render_table
from modelmeter.report import Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

FORMATS = ("table", "json", "csv", "md")


def render(
    report: Report,
    fmt: str = "table",
    depth: int | None = None,
    width: int = DEFAULT_WIDTH,
    color: bool = False,
    roofline: Roofline | None = None,
) -> str:
    """The report as text in one of ``FORMATS`` (``depth`` applies to table, csv and md).

    With ``roofline`` (``modelmeter.roofline(report, spec)``) every format adds the predicted
    latency, bound and utilization per module and for the model."""
    if fmt == "table":
        return render_table(report, depth, width=width, color=color, roofline=roofline)
    if fmt == "json":
        return render_json(report, roofline)
    if fmt == "csv":
        return render_csv(report, depth, roofline)
    if fmt == "md":
        return render_markdown(report, depth, roofline)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


__all__ = [
    "FORMATS",
    "DEFAULT_WIDTH",
    "render",
    "render_table",
    "print_table",
    "render_json",
    "render_csv",
    "render_markdown",
]
