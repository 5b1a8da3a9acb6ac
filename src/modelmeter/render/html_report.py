"""The HTML report: one self-contained page (style and script inline, no network) of a Report,
and with a chip its Roofline. A pure function of them; every text is escaped.

Sections: the inputs and convention, the module tree (every module; collapsible, searchable,
columns sortable; ``render.html_tree``), with a chip the roofline summary, the time split by
bound and the roofline chart (``render.html_chart``), the operator breakdown, the totals (the
JSON's exact figures), the notes and what was not counted. :func:`render_html_fragment` is the
page's content as one ``<div>``; a notebook shows the same tree (``render.html``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.html_chart import bound_bar, chart_points, roofline_svg
from modelmeter.render.html_tree import esc, pairs_table, tree_fragment
from modelmeter.render.markdown import totals_rows
from modelmeter.render.table import roofline_lines

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import Report


def roofline_section(report: Report, roof: Roofline, collapse: bool = True) -> str:
    """The chip's summary, the roofline chart and the time split by bound."""
    plotted = sum(p.count for p in chart_points(report, roof, collapse))
    skipped = sum(1 for mt in roof.own.values() if mt.kernels) - plotted
    note = f" ({skipped} with no FLOPs or no bytes are not placed)" if skipped > 0 else ""
    same = "; identical repeated modules are one point ×N (summed)" if collapse else ""
    return (
        f'<section class="mm-chip"><h2>Roofline on {esc(roof.spec.display_name)}</h2>'
        + pairs_table(roofline_lines(roof), "mm-roof", ("Quantity", "Value"))
        + "<h2>Time by bound</h2>"
        + bound_bar(roof)
        + f"<h2>Roofline chart</h2><p>One point per module's own ops{esc(note)}{esc(same)}; "
        "size by predicted time, colour by bound (compute, memory, overhead). Hover a point "
        "for its figures; click it to find its module(s) in the tree. Dashed: nominal peak "
        "and bandwidth; solid: attainable.</p>"
        + roofline_svg(report, roof, collapse)
        + "</section>"
    )


def render_html_fragment(
    report: Report, roofline: Roofline | None = None, *, collapse: bool = True
) -> str:
    """The page's content as one ``<div class="mm">`` with its style and script (``collapse``:
    identical repeated modules are one point of the roofline chart)."""
    totals = (
        '<section class="mm-totals"><h2>Totals</h2>'
        + pairs_table(totals_rows(report), "mm-totals-table", ("Quantity", "Exact", "Readable"))
        + "</section>"
    )
    chip = roofline_section(report, roofline, collapse) if roofline is not None else ""
    return tree_fragment(report, roofline, chip, totals)


def render_html_report(
    report: Report, roofline: Roofline | None = None, *, collapse: bool = True
) -> str:
    """The report as one self-contained HTML page (no network, opens from disk)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>modelmeter: {esc(report.model)}</title></head><body>\n"
        + render_html_fragment(report, roofline, collapse=collapse)
        + "\n</body></html>\n"
    )


__all__ = ["render_html_fragment", "render_html_report"]
