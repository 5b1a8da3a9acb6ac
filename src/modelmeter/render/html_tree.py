"""The module tree of the HTML report and the sections that need no chip, as HTML; shared by
the page (``render.html_report``) and the notebook's display (``render.html``). It imports
nothing that imports the Report (a Report's display hook imports it; types only).

The tree is rows of one table in depth-first order: each ``tr`` holds ``data-id``,
``data-parent`` (empty for the root), ``data-depth``, ``data-name`` (qualified), ``data-type``
and its own figures (``data-self-macs``, ``-flops``, ``-bytes``, ``-params``); each numeric cell
holds its exact value in ``data-v`` (the sort key) and ``title``. Rows below depth 1 start
hidden; the inline script (``render.html_assets``) opens, filters and sorts. Every text is
escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from modelmeter.render._common import convention_text, format_shape, format_shapes, percent
from modelmeter.render.html_assets import CSS, JS
from modelmeter.units import format_bytes, format_count, format_params, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import ModuleNode, Report

TREE_COLUMNS = ("Module", "Type", "Params", "MACs", "FLOPs", "Bytes moved", "Output shape",
                "% FLOPs")  # fmt: skip
CHIP_COLUMNS = ("Latency", "Bound", "% time")
OP_COLUMNS = ("Operator", "Calls", "MACs", "FLOPs", "Bytes read", "Bytes written", "% FLOPs")
_TEXT = {"Module", "Type", "Output shape", "Bound", "Operator", "Quantity", "Value", "Readable",
         "Input", "Shape", "Dtype"}  # fmt: skip  # sorted A-Z first


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def _head(columns: Sequence[str], sortable: bool = True) -> str:
    cells = []
    for c in columns:
        classes = ["mm-sort"] if sortable else []
        classes += [] if c in _TEXT else ["n"]
        cls = f' class="{" ".join(classes)}"' if classes else ""
        text = ' data-text="1"' if sortable and c in _TEXT else ""
        cells.append(f"<th{cls}{text}>{esc(c)}</th>")
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


def _num(value: int, shown: str) -> str:
    """A numeric cell: the readable figure, the exact one in ``data-v`` and ``title``."""
    return f'<td class="n" data-v="{value}" title="{value:,}">{esc(shown)}</td>'


def _txt(text: str, value: object = None) -> str:
    v = "" if value is None else f' data-v="{esc(value)}"'
    return f"<td{v}>{esc(text)}</td>"


def _chip_cells(roof: Roofline, name: str) -> str:
    mt = roof.modules[name]
    share = 100.0 * mt.latency_s / roof.latency_s if roof.latency_s else 0.0
    return (
        f'<td class="n" data-v="{mt.latency_s!r}">{esc(format_seconds(mt.latency_s))}</td>'
        f'<td class="b-{esc(mt.bound)}" data-v="{esc(mt.bound)}">{esc(mt.bound)}</td>'
        f'<td class="n" data-v="{share:.6f}">{share:.1f}%</td>'
    )


def _tree_row(
    report: Report,
    node: ModuleNode,
    ids: dict[str, int],
    parent: str,
    roof: Roofline | None,
    total_flops: int,
) -> str:
    total, own = node.total_cost(), node.self_cost()
    params = node.total_params().params
    label = report.model if node.depth == 0 else node.name.rpartition(".")[2] or node.name
    tog = (
        f'<button type="button" class="mm-tog" aria-expanded="{"true" if node.depth == 0 else "false"}"'
        ' aria-label="expand or collapse"></button>'
        if node.children
        else '<span class="mm-leaf"></span>'
    )
    attrs = (
        f'class="mm-row{" open" if node.depth == 0 else ""}" data-id="{ids[node.name]}" '
        f'data-parent="{parent}" data-depth="{node.depth}" data-name="{esc(node.name)}" '
        f'data-type="{esc(node.type)}" data-self-macs="{own.macs}" '
        f'data-self-flops="{own.flops}" data-self-bytes="{own.bytes_moved}" '
        f'data-self-params="{node.own.params}"' + (" hidden" if node.depth >= 2 else "")
    )
    pad = f"padding-left:{0.3 + 1.2 * node.depth:.1f}em"
    return (
        f"<tr {attrs}>"
        f'<td style="{pad}" data-v="{esc(label)}" title="{esc(node.name or report.model)}">'
        f"{tog}{esc(label)}</td>"
        f'<td class="mm-type">{esc(node.type)}</td>'
        + _num(params, format_params(params))
        + _num(total.macs, format_count(total.macs))
        + _num(total.flops, format_count(total.flops))
        + _num(total.bytes_moved, format_bytes(total.bytes_moved))
        + _txt(format_shapes(node.output_shapes))
        + f'<td class="n" data-v="{total.flops}">{percent(total.flops, total_flops)}</td>'
        + (_chip_cells(roof, node.name) if roof is not None else "")
        + "</tr>"
    )


def tree_table(report: Report, roof: Roofline | None = None) -> str:
    """Every module, depth-first, as the rows of one sortable table."""
    ids: dict[str, int] = {}
    rows = []
    total_flops = report.total().cost.flops

    def visit(node: ModuleNode, parent: str) -> None:
        ids[node.name] = len(ids)
        rows.append(_tree_row(report, node, ids, parent, roof, total_flops))
        for child in node.children:
            visit(child, str(ids[node.name]))

    visit(report.root, "")
    columns = TREE_COLUMNS + (CHIP_COLUMNS if roof is not None else ())
    return (
        '<div class="mm-controls"><input type="search" class="mm-search" '
        'placeholder="Filter modules by name or type" aria-label="filter modules"> '
        '<button type="button" class="mm-all" data-open="1">Expand all</button> '
        '<button type="button" class="mm-all" data-open="0">Collapse all</button></div>'
        f'<table class="mm-tree">{_head(columns)}<tbody>' + "".join(rows) + "</tbody></table>"
    )


def pairs_table(rows: Sequence[tuple[str, ...]], cls: str, head: Sequence[str]) -> str:
    """A two- or three-column table of (label, value[, readable]) rows."""
    body = []
    for row in rows:
        label, value, *rest = row
        exact = value.replace(",", "")
        numeric = exact.lstrip("-").replace(".", "", 1).isdigit()
        v = f' class="n" data-v="{esc(exact)}"' if numeric else ""
        cells = f"<td{v}>{esc(value)}</td>" + "".join(f"<td>{esc(r)}</td>" for r in rest)
        body.append(f'<tr data-key="{esc(label)}"><th scope="row">{esc(label)}</th>{cells}</tr>')
    return (
        f'<table class="{cls}">{_head(head, sortable=False)}<tbody>'
        + "".join(body)
        + ("</tbody></table>")
    )


def inputs_section(report: Report) -> str:
    """Inputs (name, shape, dtype), then frontend, mode, phases, convention and storage."""
    rows = "".join(
        f"<tr><td>{esc(i.name or f'input {k}')}</td><td>{esc(format_shape(i.shape))}</td>"
        f"<td>{esc(i.dtype)}</td></tr>"
        for k, i in enumerate(report.inputs)
    )
    facts = [
        ("frontend", report.frontend),
        ("mode", report.mode),
        ("phases", ", ".join(report.phases) or "-"),
        ("convention", convention_text(report.convention)),
    ]
    if report.storage is not None:
        facts.append(("storage", str(report.storage.to_dict())))
    dl = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    return (
        '<section class="mm-inputs"><h2>Inputs and convention</h2>'
        f"<table>{_head(('Input', 'Shape', 'Dtype'), sortable=False)}<tbody>{rows}</tbody>"
        f"</table><dl>{dl}</dl></section>"
    )


def _op_times(roof: Roofline | None) -> dict[str, float]:
    times: dict[str, float] = {}
    for t in roof.ops if roof is not None else ():
        times[t.op] = times.get(t.op, 0.0) + t.latency_s
    return times


def operators_section(report: Report, roof: Roofline | None = None) -> str:
    """One row per operator type: calls, MACs, FLOPs, bytes (and with a chip, time)."""
    total_flops = report.total().cost.flops
    times = _op_times(roof)
    lat = roof.latency_s if roof is not None else 0.0
    rows = []
    for op, stat in report.by_operator().items():
        c = stat.cost
        chip = ""
        if roof is not None:
            t = times.get(op, 0.0)
            share = 100.0 * t / lat if lat else 0.0
            chip = (
                f'<td class="n" data-v="{t!r}">{esc(format_seconds(t))}</td>'
                f'<td class="n" data-v="{share:.6f}">{share:.1f}%</td>'
            )
        rows.append(
            f'<tr data-op="{esc(op)}">{_txt(op)}'
            + _num(stat.calls, str(stat.calls))
            + _num(c.macs, format_count(c.macs))
            + _num(c.flops, format_count(c.flops))
            + _num(c.bytes_read, format_bytes(c.bytes_read))
            + _num(c.bytes_written, format_bytes(c.bytes_written))
            + f'<td class="n" data-v="{c.flops}">{percent(c.flops, total_flops)}</td>{chip}</tr>'
        )
    head = OP_COLUMNS + (("Latency", "% time") if roof is not None else ())
    return (
        '<section class="mm-operators"><h2>Operators</h2>'
        f'<table class="mm-ops">{_head(head)}<tbody>' + "".join(rows) + "</tbody></table></section>"
    )


def closing_section(report: Report) -> str:
    """The notes, then what was not counted (or that everything was)."""
    out = ""
    if report.notes:
        items = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
        out += f'<section class="mm-notes"><h2>Notes</h2><ul>{items}</ul></section>'
    missing = report.unsupported
    if not missing:
        return out + (
            '<section class="mm-unsupported"><p>Coverage: every op was counted or is declared '
            "zero-cost.</p></section>"
        )
    rows = "".join(
        f'<tr data-op="{esc(op)}"><td>{esc(op)}</td>{_num(n, str(n))}</tr>'
        for op, n in missing.items()
    )
    return out + (
        '<section class="mm-unsupported"><h2 class="mm-warn">NOT COUNTED: '
        f"{len(missing)} unsupported op(s), {sum(missing.values())} call(s)</h2>"
        "<p>Their cost is missing from every figure of this report.</p>"
        f"<table>{_head(('Operator', 'Calls'), sortable=False)}<tbody>{rows}</tbody></table>"
        "</section>"
    )


def tree_fragment(
    report: Report, roofline: Roofline | None = None, middle: str = "", tail: str = ""
) -> str:
    """One ``<div class="mm">`` with its style and script: the title, inputs, the module tree,
    ``middle`` (the page's chip sections), operators, ``tail`` (the page's totals), notes and
    what was not counted (said at the top too)."""
    t = report.total()
    meta = (
        f"{report.frontend}/{report.mode} · {format_count(t.macs)} MACs · "
        f"{format_count(t.flops)} FLOPs · {format_params(t.params)} params"
    )
    missing = report.unsupported
    warn = (
        f'<p class="mm-warn">{len(missing)} unsupported op(s) NOT COUNTED: '
        f"{esc(', '.join(missing))} (see the end of the page)</p>"
        if missing
        else ""
    )
    return (
        f'<div class="mm"><style>{CSS}</style><h1>{esc(report.model)}</h1>'
        f'<p class="mm-meta">{esc(meta)}</p>{warn}'
        + inputs_section(report)
        + '<section class="mm-modules"><h2>Modules</h2>'
        + tree_table(report, roofline)
        + "</section>"
        + middle
        + operators_section(report, roofline)
        + tail
        + closing_section(report)
        + f"<script>{JS}</script></div>"
    )


__all__ = ["esc", "pairs_table", "tree_fragment", "tree_table"]
