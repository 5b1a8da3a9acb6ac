"""What the charts draw, as plain data (``render.plots`` only draws it): the bars of the
breakdown chart, grouped so that it answers "what should I optimise", and the points of the
roofline chart, with repeated identical modules as one point.

Breakdown bars (``breakdown_bars``), by ``group``:

- ``block``: each module's own ops; identical repeated blocks (the table's ``×N`` rows) are
  one bar that SUMS the same module of every block (``encoder_layer_0..11.mlp ×12``);
- ``type``: the own ops of every module of one type summed (``Linear ×48``);
- ``module``: one bar per module, as the modules come.

Each bar splits its predicted time into compute-limited, memory-limited and overhead time
(per op, max(compute, memory) goes to the larger), so the bars of a grouping add up to the
predicted latency.

Roofline points (``roofline_points``): one per module's own ops (or per op); modules of the
same type, output shapes and own cost (FLOPs, bytes, kernels) are one point ``×N`` at their
summed FLOPs / summed latency, sized by the summed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelmeter.analysis.roofline_times import BOUNDS
from modelmeter.render.table_rows import span, table_rows

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import ModuleNode, Report

GROUPS = ("block", "type", "module")


@dataclass(frozen=True)
class Bar:
    """One bar of the breakdown chart: predicted seconds by what limits them."""

    label: str
    compute_s: float  # ops whose compute time is the larger
    memory_s: float  # ops whose memory time is the larger
    overhead_s: float
    count: int = 1  # modules the bar sums

    @property
    def total_s(self) -> float:
        return self.compute_s + self.memory_s + self.overhead_s


@dataclass(frozen=True)
class Point:
    """One marker of the roofline chart (``count`` identical modules or ops summed)."""

    label: str
    intensity: float  # FLOP per byte moved
    achieved: float  # FLOP/s: FLOPs / predicted latency
    latency_s: float
    bound: str
    count: int = 1
    members: tuple[str, ...] = ()  # the modules it sums (a module's own ops; per op: theirs)


def own_parts(roof: Roofline) -> dict[str, tuple[float, float, float]]:
    """(compute-limited, memory-limited, overhead) seconds of each module's own ops."""
    parts: dict[str, list[float]] = {}
    for t in roof.ops:
        p = parts.setdefault(t.module, [0.0, 0.0, 0.0])
        p[0 if t.compute_s >= t.memory_s else 1] += max(t.compute_s, t.memory_s)
        p[2] += t.overhead_s
    return {k: (v[0], v[1], v[2]) for k, v in parts.items()}


def module_label(report: Report, node: ModuleNode, names: list[str]) -> str:
    """``name (Type)``; ``, own ops`` where it has children (their time is apart); ``×N``."""
    own = ", own ops" if node.children else ""
    name = span(names) or report.model
    times = f" ×{len(names)}" if len(names) > 1 else ""
    return f"{name} ({node.type}{own}){times}"


def breakdown_bars(
    report: Report, roof: Roofline, top: int | None = None, group: str = "block"
) -> tuple[list[Bar], int]:
    """The ``top`` bars by predicted time (all with None) and how many bars there are in all."""
    if group not in GROUPS:
        raise ValueError(f"unknown grouping {group!r}; use one of {', '.join(GROUPS)}")
    parts = own_parts(roof)
    nodes = {n.name: n for n in report.modules()}
    if group == "type":
        bars = _by_type(report, parts, nodes)
    else:
        members = (
            [r.members for r in table_rows(report, None, collapse=True)]
            if group == "block"
            else [(n,) for n in nodes]
        )
        bars = []
        for names in members:
            sums = [sum(parts.get(m, (0.0, 0.0, 0.0))[k] for m in names) for k in range(3)]
            if any(sums):
                bars.append(Bar(module_label(report, nodes[names[0]], list(names)), *sums,
                                count=len(names)))  # fmt: skip
        orphans = set(parts) - set(nodes)  # ops of a module the tree does not hold
        bars += [Bar(m, *parts[m]) for m in sorted(orphans)]
    bars.sort(key=lambda b: -b.total_s)
    return bars[:top] if top is not None else bars, len(bars)


def _by_type(
    report: Report, parts: dict[str, tuple[float, float, float]], nodes: dict[str, ModuleNode]
) -> list[Bar]:
    sums: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for name, p in parts.items():
        node = nodes.get(name)
        key = name if node is None else node.type + (" (own ops)" if node.children else "")
        s = sums.setdefault(key, [0.0, 0.0, 0.0])
        for k in range(3):
            s[k] += p[k]
        counts[key] = counts.get(key, 0) + 1
    return [
        Bar(f"{key} ×{counts[key]}" if counts[key] > 1 else key, *s, count=counts[key])
        for key, s in sums.items()
    ]


Member = tuple[str, float, int, int, str]  # (module, latency, FLOPs, bytes, bound)


def roofline_points(
    report: Report, roof: Roofline, *, per_op: bool = False, collapse: bool = True
) -> list[Point]:
    """The markers of the roofline chart (modules or ops with FLOPs, bytes and time)."""
    nodes = {n.name: n for n in report.modules()}
    groups: dict[tuple, list[Member]] = {}
    if per_op:
        for i, t in enumerate(roof.ops):
            if t.flops and t.bytes and t.latency_s:
                node = nodes.get(t.module)
                kind = node.type if node is not None else t.module
                key = (t.op, kind, t.flops, t.bytes) if collapse else (t.op, i)
                groups.setdefault(key, []).append(
                    (t.module, t.latency_s, t.flops, t.bytes, t.bound)
                )
        return [
            _point(v, f"{span([m[0] for m in v]) or report.model}: {k[0]}")
            for k, v in groups.items()
        ]
    for name, mt in roof.own.items():
        if mt.kernels and mt.flops and mt.bytes and mt.latency_s:
            node = nodes.get(name)
            shapes = tuple(map(tuple, node.output_shapes)) if node is not None else ()
            kind = (node.type, bool(node.children)) if node is not None else (name, False)
            key = (kind, shapes, mt.flops, mt.bytes, mt.kernels) if collapse else (name,)
            groups.setdefault(key, []).append((name, mt.latency_s, mt.flops, mt.bytes, mt.bound))
    points = []
    for members in groups.values():
        names = [m[0] for m in members]
        node = nodes.get(names[0])
        text = names[0] if node is None else module_label(report, node, names)
        points.append(_point(members, text))
    return points


def _point(members: list[Member], label: str) -> Point:
    """One marker of ``members``: summed figures, the bound that takes most of their time."""
    latency = sum(m[1] for m in members)
    flops = sum(m[2] for m in members)
    moved = sum(m[3] for m in members)
    by_bound = [sum(m[1] for m in members if m[4] == b) for b in BOUNDS]
    bound = BOUNDS[by_bound.index(max(by_bound))]
    if len(members) > 1 and not label.endswith(f"×{len(members)}"):
        label += f" ×{len(members)}"
    names = tuple(m[0] for m in members)
    return Point(label, flops / moved, flops / latency, latency, bound, len(members), names)


__all__ = ["GROUPS", "Bar", "Point", "breakdown_bars", "own_parts", "roofline_points", "span"]
