"""The HTML a notebook shows for a Report (``Report._repr_html_`` delegates here): a small,
self-contained table of the top-level modules and the totals, every text escaped.

The rows add up: the model's own ops (functional code in its ``forward``) get a row of their
own when there are any, so the top-level rows sum to the total.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from modelmeter.units import format_bytes, format_count, format_params

if TYPE_CHECKING:
    from modelmeter.report import ModuleRow, Report

_HEAD = ("Module", "Type", "Params", "MACs", "FLOPs", "Bytes moved")
_STYLE = "text-align:right;font-variant-numeric:tabular-nums"


def _cells(name: str, type_: str, params: int, macs: int, flops: int, moved: int) -> list[str]:
    return [name, type_, format_params(params), format_count(macs), format_count(flops),
            format_bytes(moved)]  # fmt: skip


def _tr(cells: list[str], tag: str = "td", bold: bool = False) -> str:
    out = []
    for i, cell in enumerate(cells):
        style = f' style="{_STYLE}"' if i >= 2 else ' style="text-align:left"'
        text = f"<b>{escape(cell)}</b>" if bold else escape(cell)
        out.append(f"<{tag}{style}>{text}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"


def _row_cells(row: ModuleRow) -> list[str]:
    c = row.total_cost
    return _cells(row.name, row.type, row.params, c.macs, c.flops, c.bytes_moved)


def render_html(report: Report) -> str:
    """The report as one HTML ``<div>``: a caption (model, inputs, frontend/mode), the
    top-level modules with their totals, the model's own ops, the total row and the notes."""
    total = report.total()
    rows = [_tr(list(_HEAD), "th")]
    rows += [_tr(_row_cells(r)) for r in report.by_module(depth=1) if r.depth == 1]
    own = report.root.self_cost()
    if own.macs or own.flops or own.bytes_moved:
        rows.append(_tr(_cells("(own ops)", "", 0, own.macs, own.flops, own.bytes_moved)))
    t = total.cost
    rows.append(_tr(_cells("Total", "", total.params, t.macs, t.flops, t.bytes_moved), bold=True))
    shapes = ", ".join(
        f"{'x'.join(map(str, i.shape)) or 'scalar'}:{i.dtype}" for i in report.inputs
    )
    caption = f"{report.model} · {shapes} · {report.frontend}/{report.mode}"
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (
        '<div class="modelmeter-report"><table>'
        f'<caption style="text-align:left">{escape(caption)}</caption>'
        + "".join(rows)
        + "</table>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</div>"
    )


__all__ = ["render_html"]
