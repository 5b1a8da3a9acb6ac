"""The HTML a notebook shows for a Report (``Report._repr_html_`` delegates here): the same
module tree as the HTML report (``render.html_report``), as one ``<div class="mm">`` with its
style and script scoped to it, every text escaped.

Where the notebook runs the script (a trusted notebook), the tree folds, filters and sorts;
where it does not, the top-level modules show, with the totals, operators and notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.html_report import render_html_fragment

if TYPE_CHECKING:
    from modelmeter.report import Report


def render_html(report: Report) -> str:
    """The report as one HTML ``<div>``: inputs, the module tree (rows add up), operators,
    totals, notes and what was not counted."""
    return render_html_fragment(report)


__all__ = ["render_html"]
