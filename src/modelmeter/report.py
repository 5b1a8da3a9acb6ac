"""Plain, typed, summable results. A Report never renders itself and imports no framework.

A :class:`ModuleNode` stores only its *own* cost (the ops that ran while it was the innermost
running module); totals are always computed, so nothing is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from modelmeter.costs import ZERO, Cost, OpRecord, OpStat, ParamStats
from modelmeter.units import DTYPE_BYTES, SIZE_PRECISIONS

SCHEMA = "modelmeter.report/1"
PHASES = ("forward", "backward")


@dataclass(slots=True)
class ModuleNode:
    """One module of the tree. ``ops`` and ``own`` hold only what is its own."""

    name: str
    type: str
    depth: int = 0
    calls: int = 0
    own: ParamStats = field(default_factory=ParamStats)
    output_shapes: list[list[int]] = field(default_factory=list)
    ops: list[OpRecord] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)
    children: list[ModuleNode] = field(default_factory=list)

    def walk(self) -> Iterator[ModuleNode]:
        """This node, then its subtree, depth first in registration order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def self_cost(self, phase: str | None = None) -> Cost:
        return sum((o.cost for o in self.ops if phase is None or o.phase == phase), ZERO)

    def total_cost(self, phase: str | None = None) -> Cost:
        return self.self_cost(phase) + sum((c.total_cost(phase) for c in self.children), ZERO)

    def total_params(self) -> ParamStats:
        return self.own + sum((c.total_params() for c in self.children), ParamStats())


@dataclass(frozen=True, slots=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.name is not None:
            d["name"] = self.name
        return d


@dataclass(frozen=True, slots=True)
class Totals:
    """Whole-model figures: parameters and the summed cost of every op."""

    params: int
    trainable_params: int
    buffers: int
    unused_params: int
    cost: Cost
    activation_bytes: int
    peak_activation_bytes: int

    def to_dict(self) -> dict[str, int]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "unused_params": self.unused_params,
            **self.cost.to_dict(),
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
        }


@dataclass(frozen=True, slots=True)
class ModuleRow:
    """A flattened tree row, as renderers and ``by_module`` give it."""

    name: str
    type: str
    depth: int
    calls: int
    params: int
    self_cost: Cost
    total_cost: Cost
    output_shapes: list[list[int]]
    node: ModuleNode

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "calls": self.calls,
            "params": self.params,
            "output_shapes": self.output_shapes,
            "self": self.self_cost.to_dict(),
            "total": self.total_cost.to_dict(),
        }


@dataclass(slots=True)
class Report:
    model: str
    frontend: str
    convention: str
    mode: str
    inputs: list[InputSpec]
    root: ModuleNode
    activation_bytes: int = 0
    peak_activation_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    # ---- queries -------------------------------------------------------------------------
    def total(self, phase: str | None = None) -> Totals:
        p = self.root.total_params()
        return Totals(
            params=p.params,
            trainable_params=p.trainable,
            buffers=p.buffers,
            unused_params=p.unused,
            cost=self.root.total_cost(phase),
            activation_bytes=self.activation_bytes,
            peak_activation_bytes=self.peak_activation_bytes,
        )

    def modules(self) -> Iterator[ModuleNode]:
        return self.root.walk()

    def by_module(self, depth: int | None = None, phase: str | None = None) -> list[ModuleRow]:
        """Rows of the module tree down to ``depth`` (None: all), each with self and total cost.

        A row's ``self_cost`` is its own ops plus, where its children are cut off by
        ``depth``, nothing else: cut-off children are folded into ``total_cost`` only.
        """
        rows = []
        for node in self.root.walk():
            if depth is not None and node.depth > depth:
                continue
            rows.append(
                ModuleRow(
                    name=node.name,
                    type=node.type,
                    depth=node.depth,
                    calls=node.calls,
                    params=node.total_params().params,
                    self_cost=node.self_cost(phase),
                    total_cost=node.total_cost(phase),
                    output_shapes=node.output_shapes,
                    node=node,
                )
            )
        return rows

    def by_operator(self, phase: str | None = None) -> dict[str, OpStat]:
        stats: dict[str, OpStat] = {}
        for node in self.root.walk():
            for rec in node.ops:
                if phase is not None and rec.phase != phase:
                    continue
                one = OpStat(1, rec.cost)
                stats[rec.op] = stats[rec.op] + one if rec.op in stats else one
        return dict(sorted(stats.items(), key=lambda kv: (-kv[1].cost.flops, kv[0])))

    @property
    def unsupported(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in self.root.walk():
            for op, n in node.unsupported.items():
                out[op] = out.get(op, 0) + n
        return dict(sorted(out.items()))

    @property
    def phases(self) -> list[str]:
        seen = {rec.phase for node in self.root.walk() for rec in node.ops}
        return [p for p in PHASES if p in seen]

    def size_by_dtype(self, node: ModuleNode | None = None) -> dict[str, int]:
        """Bytes of the parameters at each precision, plus ``native`` (their own dtypes).

        Buffers (e.g. BN running statistics) are not parameters and are not included.
        """
        return _sizes((node or self.root).total_params())

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "frontend": self.frontend,
            "convention": self.convention,
            "mode": self.mode,
            "inputs": [i.to_dict() for i in self.inputs],
            "phases": self.phases,
            "total": self.total().to_dict(),
            "size_by_dtype": self.size_by_dtype(),
            "by_operator": {
                k: {"calls": v.calls, **v.cost.to_dict()} for k, v in self.by_operator().items()
            },
            "modules": [_node_to_dict(n) for n in self.root.walk()],
            "unsupported": self.unsupported,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        nodes = [_node_from_dict(m) for m in d["modules"]]
        root = _assemble(nodes)
        total = d["total"]
        return cls(
            model=d["model"],
            frontend=d["frontend"],
            convention=d["convention"],
            mode=d["mode"],
            inputs=[InputSpec(tuple(i["shape"]), i["dtype"], i.get("name")) for i in d["inputs"]],
            root=root,
            activation_bytes=int(total.get("activation_bytes", 0)),
            peak_activation_bytes=int(total.get("peak_activation_bytes", 0)),
            notes=list(d.get("notes", [])),
        )


def _sizes(p: ParamStats) -> dict[str, int]:
    """Bytes of ``p.params`` parameters at each precision (int4 rounds up), and natively."""
    out = {dt: int(-(-p.params * DTYPE_BYTES[dt] // 1)) for dt in SIZE_PRECISIONS}
    out["native"] = p.param_bytes
    return out


def _node_to_dict(n: ModuleNode) -> dict[str, Any]:
    tp = n.total_params()
    return {
        "name": n.name,
        "type": n.type,
        "depth": n.depth,
        "calls": n.calls,
        "params": tp.params,
        "trainable_params": tp.trainable,
        "size_by_dtype": _sizes(tp),
        "own": asdict(n.own),
        "output_shapes": n.output_shapes,
        "self": n.self_cost().to_dict(),
        "total": n.total_cost().to_dict(),
        "unsupported": dict(n.unsupported),
        "ops": [o.to_dict() for o in n.ops],
    }


def _node_from_dict(m: dict[str, Any]) -> ModuleNode:
    return ModuleNode(
        name=m["name"],
        type=m["type"],
        depth=int(m["depth"]),
        calls=int(m["calls"]),
        own=ParamStats(**m.get("own", {})),
        output_shapes=[list(s) for s in m.get("output_shapes", [])],
        ops=[OpRecord.from_dict(o) for o in m.get("ops", [])],
        unsupported=dict(m.get("unsupported", {})),
    )


def _assemble(nodes: list[ModuleNode]) -> ModuleNode:
    """Rebuild the tree from a depth-first list of nodes with depths."""
    if not nodes:
        raise ValueError("report has no modules")
    root = nodes[0]
    stack = [root]
    for node in nodes[1:]:
        while stack and stack[-1].depth >= node.depth:
            stack.pop()
        if not stack:
            raise ValueError(f"module {node.name!r} has no parent in the report")
        stack[-1].children.append(node)
        stack.append(node)
    return root


def with_notes(report: Report, *notes: str) -> Report:
    """A copy of ``report`` with notes appended."""
    return replace(report, notes=[*report.notes, *notes])


__all__ = [
    "SCHEMA",
    "PHASES",
    "Cost",
    "ZERO",
    "OpRecord",
    "OpStat",
    "ParamStats",
    "ModuleNode",
    "InputSpec",
    "Totals",
    "ModuleRow",
    "Report",
    "with_notes",
]
