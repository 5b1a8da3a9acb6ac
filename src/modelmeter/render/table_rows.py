"""The rows of the module table: the tree at a depth, identical sibling blocks collapsed into
one row (``0..11 ×12``, figures summed over the blocks), siblings sorted by a cost, or a flat
list of the hotspots (the modules with the highest own cost at the depth).

Two siblings are identical when they have the same type, the same structure (children, calls,
parameters) and the same cost per op, in order. A collapsed row's figures are the SUM over its
blocks (so rows still add up); each row under it sums the same module of every block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from modelmeter.analysis.roofline_times import BOUNDS, ModuleTime
from modelmeter.costs import Cost
from modelmeter.errors import InputError
from modelmeter.render._common import relative_name, shown_children
from modelmeter.report import ModuleNode, ModuleRow, Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

COST_FIELDS = tuple(f.name for f in fields(Cost))
SORT_KEYS = ("macs", "flops", "bytes", "params", "latency")


@dataclass(frozen=True)
class TableView:
    """How the table shows the tree: ``collapse`` identical sibling blocks (on by default),
    ``sort`` siblings by a cost (one of SORT_KEYS), or the ``top`` N hotspots as a flat list."""

    collapse: bool = True
    sort: str | None = None
    top: int | None = None


DEFAULT_VIEW = TableView()


@dataclass(frozen=True, slots=True)
class TableRow(ModuleRow):
    """One row shown: a module, or the identical modules of collapsed blocks, summed (the
    ModuleRow fields: the first module's name, type, depth, shapes and node; the calls,
    parameters and costs summed over ``members``)."""

    label: str  # the name shown after the tree guides (relative; ``0..11 ×12`` when collapsed)
    members: tuple[str, ...]  # qualified names of the blocks a collapsed row sums
    scale: int = 1  # how many modules the figures sum (1: one module)
    guides: str = ""
    minus: tuple[str, ...] = ()  # hotspot rows: the modules shown below it, taken off


def signature(node: ModuleNode) -> tuple:
    """What makes two modules identical for collapsing (not their names)."""
    return (
        node.type,
        node.calls,
        node.own,
        tuple((r.op, r.phase, r.cost) for r in node.ops),
        tuple(signature(c) for c in node.children),
    )


def group_label(first: str, last: str, k: int) -> str:
    """``encoder_layer_0`` .. ``encoder_layer_11`` -> ``encoder_layer_0..11 ×12``."""
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    while n and first[n - 1].isdigit():
        n -= 1
    return f"{first}..{last[n:]} ×{k}"


def _series(name: str) -> str | None:
    """``layers.11`` -> ``layers.``: the stem of a numbered block (None: not numbered)."""
    stem = name.rstrip("0123456789")
    return stem if stem != name else None


def _groups(kids: list[ModuleNode], collapse: bool) -> list[list[ModuleNode]]:
    """Neighbouring siblings of one numbered series (``0``, ``1`` ... or ``layer_0`` ...) that
    are identical form a group (``input_layernorm`` and ``post_attention_layernorm`` do not)."""
    out: list[list[ModuleNode]] = []
    for kid in kids:
        stem = _series(kid.name)
        if (
            collapse
            and out
            and stem is not None
            and _series(out[-1][0].name) == stem
            and signature(out[-1][0]) == signature(kid)
        ):
            out[-1].append(kid)
        else:
            out.append([kid])
    return out


def sort_value(row: TableRow, key: str, roofline: Roofline | None) -> float:
    """The figure ``--sort``/``--top`` orders by (bytes: read + written)."""
    c = row.total_cost
    if key == "params":
        return row.params
    if key == "bytes":
        return c.bytes_read + c.bytes_written
    if key == "latency":
        if roofline is None:
            raise InputError("sorting by latency needs a chip: give --hardware or --peak")
        return row_latency(roofline, row)
    return getattr(c, key)


def row_latency(roofline: Roofline, row: TableRow) -> float:
    """The predicted latency of the row's modules (a collapsed row: summed over its blocks;
    a hotspot row: less the rows shown below it)."""
    return row_time(roofline, row).latency_s


_TIME_FIELDS = (
    "compute_s", "memory_s", "overhead_s", "latency_s", "flops", "bytes", "kernels",
    *(f"{b}_bound" for b in BOUNDS), *(f"{b}_bound_s" for b in BOUNDS),
)  # fmt: skip


def row_time(roofline: Roofline, row: TableRow) -> ModuleTime:
    """The roofline times of a row: its modules' subtree times summed, less those of
    ``row.minus`` (a hotspot row's own share at the depth)."""
    plus = [roofline.modules[m] for m in row.members]
    if len(plus) == 1 and not row.minus:
        return plus[0]
    less = [roofline.modules[m] for m in row.minus]
    values = {
        f: sum(getattr(t, f) for t in plus) - sum(getattr(t, f) for t in less)
        for f in _TIME_FIELDS
    }
    return ModuleTime(name=row.name, peak=plus[0].peak, **values)


def span(names: Sequence[str]) -> str:
    """The names of corresponding modules of repeated blocks as one:
    ``layers.0.mlp`` .. ``layers.11.mlp`` -> ``layers.0..11.mlp`` (the first and last);
    names at different depths: their common leading part and ``…`` (``encoder.…``)."""
    first, last = names[0].split("."), names[-1].split(".")
    if len(names) == 1:
        return names[0]
    if len({n.count(".") for n in names}) > 1:  # not one series: their common part, then …
        common = []
        for level in zip(*(n.split(".") for n in names)):
            if len(set(level)) > 1:
                break
            common.append(level[0])
        return ".".join([*common, "…"])
    out = []
    for a, b in zip(first, last):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        while n and a[n - 1].isdigit():
            n -= 1
        out.append(a if a == b else f"{a}..{b[n:]}")
    return ".".join(out)


def qualified_label(report: Report, row: TableRow, times: bool = True) -> str:
    """The row's full name: the model for the root, ``layers.0..11.mlp`` for the same module
    of collapsed blocks, `` ×12`` after it unless ``times`` is False."""
    if row.depth == 0:
        return report.model
    name = span(row.members)
    return f"{name} ×{row.scale}" if times and row.scale > 1 else name


def table_rows(
    report: Report,
    depth: int | None = None,
    *,
    collapse: bool = True,
    sort: str | None = None,
    roofline: Roofline | None = None,
) -> list[TableRow]:
    """The rows shown at ``depth`` in tree order (siblings by ``sort`` descending if given).

    Under a collapsed row, each row sums the corresponding module of every block (its
    ``members``), so every figure is an exact sum, never an estimate."""
    out: list[TableRow] = []

    def visit(peers: list[ModuleNode], lead: str) -> None:
        kids = [shown_children(p, depth) for p in peers]
        subtrees = []
        start = 0
        for group in _groups(kids[0], collapse):
            idx = range(start, start + len(group))
            start += len(group)
            members = [k[j] for k in kids for j in idx]
            label = relative_name(peers[0], group[0])
            if len(group) > 1:
                label = group_label(label, relative_name(peers[0], group[-1]), len(group))
            subtrees.append((make(members, label), members))
        if sort is not None:
            subtrees.sort(key=lambda rm: -sort_value(rm[0], sort, roofline))
        for i, (row, members) in enumerate(subtrees):
            last = i == len(subtrees) - 1
            out.append(replace(row, guides=lead + ("└─ " if last else "├─ ")))
            visit(members, lead + ("   " if last else "│  "))

    def make(members: list[ModuleNode], label: str) -> TableRow:
        first = members[0]
        return TableRow(
            label=label,
            name=first.name,
            members=tuple(m.name for m in members),
            type=first.type,
            depth=first.depth,
            calls=sum(m.calls for m in members),
            params=sum(m.total_params().params for m in members),
            self_cost=sum((m.self_cost() for m in members), Cost()),
            total_cost=sum((m.total_cost() for m in members), Cost()),
            output_shapes=first.output_shapes,
            node=first,
            scale=len(members),
        )

    out.append(make([report.root], report.model))
    visit([report.root], "")
    return out


def hotspots(
    rows: list[TableRow], n: int, key: str, roofline: Roofline | None = None
) -> list[TableRow]:
    """The ``n`` rows with the highest OWN ``key`` at the depth: a row's figures less those
    of the rows shown under it (a row cut at the depth keeps its whole subtree), so the list
    partitions the model's total; flat, with qualified names."""
    ranked: list[tuple[float, int, TableRow]] = []
    for i, row in enumerate(rows):
        kids = []
        for other in rows[i + 1 :]:
            if other.depth <= row.depth:
                break
            if other.depth == row.depth + 1:
                kids.append(other)
        cost, params = row.total_cost, row.params
        value = sort_value(row, key, roofline)
        for kid in kids:
            cost = Cost(*(getattr(cost, f) - getattr(kid.total_cost, f) for f in COST_FIELDS))
            params -= kid.params
            value -= sort_value(kid, key, roofline)
        name = row.label if row.depth == 0 else _qualified(row)
        minus = tuple(m for kid in kids for m in kid.members)
        own = replace(row, label=name, total_cost=cost, self_cost=cost, params=params, minus=minus)
        ranked.append((value, i, own))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return [r for _, _, r in ranked[:n]]


def view_rows(
    report: Report, depth: int | None, roofline: Roofline | None, view: TableView
) -> list[TableRow]:
    """The rows a view shows, in every format that shows module rows (table, csv, md): the
    tree at ``depth`` (collapsed, sorted) or its ``top`` hotspots."""
    rows = table_rows(report, depth, collapse=view.collapse, sort=view.sort, roofline=roofline)
    if view.top is not None:
        rows = hotspots(rows, view.top, view.sort or "macs", roofline)
    return rows


def _qualified(row: TableRow) -> str:
    parent = row.name.rpartition(".")[0]
    return f"{parent}.{row.label}" if parent else row.label
