"""The HTML a notebook shows for a Report (``Report._repr_html_`` delegates here): the same
module tree as the HTML report (``render.html_tree``, shared with ``render.html_report``), as
one ``<div class="mm">`` with its style and script scoped to it, every text escaped. The root
row holds the totals; the page's totals table and chip sections are not shown (they import
renderers that import the Report: the display hook would close an import cycle).

Where the notebook runs the script (a trusted notebook), the tree folds, filters and sorts;
where it does not, the top-level modules show, with the totals, operators and notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.html_tree import tree_fragment

if TYPE_CHECKING:
    from modelmeter.report import Report


def render_html(report: Report) -> str:
    """The report as one HTML ``<div>``: inputs, the module tree (rows add up; the root row is
    the total), operators, notes and what was not counted."""
    return tree_fragment(report)


__all__ = ["render_html"]
