"""Small presentation helpers shared by the renderers (no counting, no framework imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.units import SHORT_DTYPE

if TYPE_CHECKING:  # types only: the notebook's display (render.html) imports this module
    from modelmeter.report import ModuleNode, ModuleRow, Report

CONVENTION_TEXT: dict[str, str] = {
    "exact": "exact: every multiply and every add counted (the source document's formulas)",
    "2mac": "2mac: FLOPs = 2 x MACs for sum-of-products ops, bias adds ignored",
}

MAX_SHAPES = 2


def convention_text(convention: str) -> str:
    return CONVENTION_TEXT.get(convention, convention)


def row_label(report: Report, row: ModuleRow) -> str:
    """The root is shown as the model's label, other rows by their qualified name."""
    return report.model if row.depth == 0 else row.name


def format_shape(shape: list[int] | tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


def format_shapes(shapes: list[list[int]], limit: int | None = MAX_SHAPES) -> str:
    """``1x64x56x56`` or ``1x10, 1x5`` (first call's outputs); the rest counted, not listed."""
    if not shapes:
        return ""
    shown = shapes if limit is None else shapes[:limit]
    text = ", ".join(format_shape(s) for s in shown)
    if len(shapes) > len(shown):
        text += f" +{len(shapes) - len(shown)} more"
    return text


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def peak_live_scope(report: Report) -> str:
    """What "peak live" includes when it differs from a forward pass's activations: with the
    backward pass, the gradients too (empty for a forward pass)."""
    if "backward" not in report.phases:
        return ""
    return (
        " (inputs, activations kept for the backward pass, and the gradients of activations "
        "and parameters; not the parameters, buffers or optimizer state)"
    )


def dtype_label(dtype: str) -> str:
    return SHORT_DTYPE.get(dtype, dtype)


def format_inputs(report: Report) -> str:
    parts = []
    for spec in report.inputs:
        text = f"{format_shape(spec.shape)} {spec.dtype}"
        parts.append(f"{spec.name}={text}" if spec.name else text)
    return ", ".join(parts) or "-"


def shown_children(node: ModuleNode, depth: int | None) -> list[ModuleNode]:
    """Children of ``node`` that appear among ``report.by_module(depth)``."""
    if depth is not None and node.depth >= depth:
        return []
    return list(node.children)


def tree_prefixes(root: ModuleNode, depth: int | None) -> dict[int, str]:
    """Tree guides (``├─ ``, ``│  └─ `` ...) per node id, for the rows shown at ``depth``."""
    out: dict[int, str] = {id(root): ""}

    def visit(node: ModuleNode, lead: str) -> None:
        kids = shown_children(node, depth)
        for i, child in enumerate(kids):
            last = i == len(kids) - 1
            out[id(child)] = lead + ("└─ " if last else "├─ ")
            visit(child, lead + ("   " if last else "│  "))

    visit(root, "")
    return out


def relative_name(parent: ModuleNode | None, node: ModuleNode) -> str:
    if parent is None or not parent.name:
        return node.name
    return node.name.removeprefix(parent.name + ".")


def parents(root: ModuleNode) -> dict[int, ModuleNode]:
    out: dict[int, ModuleNode] = {}
    for node in root.walk():
        for child in node.children:
            out[id(child)] = node
    return out


def rate_text(rate: float) -> str:
    """A rate (tokens/s): one decimal from 1 up (``1,234.5``), three significant digits
    below (``0.0123``: a slow chip's rate would read ``0.0``)."""
    return f"{rate:,.1f}" if rate >= 1 or rate == 0 else f"{rate:.3g}"


def md_cell(text: str) -> str:
    """``text`` as one Markdown table cell (pipes escaped, on one line)."""
    return text.replace("|", "\\|").replace("\n", " ")


def md_pairs(title: str, rows: list[tuple[str, str]], *, head: str = "Quantity") -> str:
    """``# title`` and a two-column Markdown table of (label, value) rows."""
    out = [f"# {md_cell(title)}", "", f"| {head} | Value |", "|---|---|"]
    out += [f"| {md_cell(k)} | {md_cell(v)} |" for k, v in rows]
    return "\n".join(out) + "\n"
