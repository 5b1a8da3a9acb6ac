"""The HTML a notebook shows for a Report (``Report._repr_html_``; the facade registers
:func:`render_html` in ``report.DISPLAY``, so the Report imports no renderer): the HTML report's
content (``render.html_report.render_html_fragment``) as one ``<div class="mm">`` with its style
and script scoped to it, every text escaped -- the module tree, the operators, the totals, and
when the Report carries a chip (``report.with_chip(roofline)``) its roofline summary (predicted
latency, bound, utilization), the time split by bound and the roofline chart.

Where the notebook runs the script (a trusted notebook), the tree folds, filters and sorts;
where it does not, the top-level modules show, with the totals, operators and notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.html_report import render_html_fragment

if TYPE_CHECKING:
    from modelmeter.report import Report


def render_html(report: Report) -> str:
    """The report as one HTML ``<div>``: inputs, the module tree (rows add up; the root row is
    the total), with a chip its roofline, operators, totals, notes and what was not counted."""
    return render_html_fragment(report, report.chip)


__all__ = ["render_html"]
