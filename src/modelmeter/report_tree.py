"""The module tree of a Report and its document form: :class:`ModuleNode` (a module's own ops
and parameters; totals computed, never stored), and the checked conversion of a tree to and
from the dicts of a ``modelmeter.report/1`` document. ``report.py`` builds the Report on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from modelmeter.costs import ZERO, Cost, OpRecord, ParamStats
from modelmeter.errors import ReportFormatError
from modelmeter.units import DTYPE_BYTES, SIZE_PRECISIONS

SCHEMA = "modelmeter.report/1"
PHASES = ("forward", "backward", "recompute", "optimizer")


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
        stack = [self]
        while stack:
            yield (node := stack.pop())
            stack.extend(reversed(node.children))

    def self_cost(self, phase: str | None = None) -> Cost:
        return sum((o.cost for o in self.ops if phase is None or o.phase == phase), ZERO)

    def total_cost(self, phase: str | None = None) -> Cost:
        return self.self_cost(phase) + sum((c.total_cost(phase) for c in self.children), ZERO)

    def total_params(self) -> ParamStats:
        return self.own + sum((c.total_params() for c in self.children), ParamStats())


def param_sizes(p: ParamStats) -> dict[str, int]:
    """Bytes of ``p.params`` parameters at each precision (int4 rounds up), and natively."""
    out = {dt: int(-(-p.params * DTYPE_BYTES[dt] // 1)) for dt in SIZE_PRECISIONS}
    out["native"] = p.param_bytes
    return out


def node_to_dict(n: ModuleNode) -> dict[str, Any]:
    tp = n.total_params()
    return {
        "name": n.name,
        "type": n.type,
        "depth": n.depth,
        "calls": n.calls,
        "params": tp.params,
        "trainable_params": tp.trainable,
        "size_by_dtype": param_sizes(tp),
        "own": asdict(n.own),
        "output_shapes": n.output_shapes,
        "self": n.self_cost().to_dict(),
        "total": n.total_cost().to_dict(),
        "unsupported": dict(n.unsupported),
        "ops": [o.to_dict() for o in n.ops],
    }


def checked_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ReportFormatError(f"malformed {SCHEMA} document: {what} {value!r} is not a string")
    return value


def checked_count(value: Any, what: str) -> int:
    """A count in a saved report: a whole number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportFormatError(
            f"malformed {SCHEMA} document: {what} {str(value)[:40]!r} is not a whole number >= 0"
        )
    return value


def checked_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReportFormatError(f"malformed {SCHEMA} document: {what} is not a list")
    return value


def op_from_dict(o: dict[str, Any]) -> OpRecord:
    for f in fields(Cost):
        checked_count(o.get(f.name, 0), f.name)
    checked_text(o["op"], "op")
    if o.get("phase", "forward") not in PHASES:
        raise ReportFormatError(f"malformed {SCHEMA} document: unknown phase {o.get('phase')!r}")
    checked_text(o.get("dtype", "float32"), "op dtype")
    if o.get("unit") not in (None, "matrix", "vector"):
        raise ReportFormatError(f"malformed {SCHEMA} document: unknown unit {o.get('unit')!r}")
    for shape in checked_list(o.get("shapes", []), "op shapes"):
        for x in checked_list(shape, "op shape"):
            checked_count(x, "op shape")
    return OpRecord.from_dict(o)


def node_from_dict(m: dict[str, Any]) -> ModuleNode:
    own = m.get("own", {})
    for key, value in own.items():
        checked_count(value, f"own.{key}")
    unsupported = {checked_text(k, "op"): checked_count(v, "unsupported calls")
                   for k, v in m.get("unsupported", {}).items()}  # fmt: skip
    return ModuleNode(
        name=checked_text(m["name"], "module name"),
        type=checked_text(m["type"], "module type"),
        depth=checked_count(m["depth"], "depth"),
        calls=checked_count(m["calls"], "calls"),
        own=ParamStats(**own),
        output_shapes=[list(s) for s in checked_list(m.get("output_shapes", []), "output_shapes")],
        ops=[op_from_dict(o) for o in checked_list(m.get("ops", []), "ops")],
        unsupported=unsupported,
    )


def assemble(nodes: list[ModuleNode]) -> ModuleNode:
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


__all__ = [
    "SCHEMA",
    "PHASES",
    "ModuleNode",
    "param_sizes",
    "node_to_dict",
    "node_from_dict",
    "assemble",
    "checked_text",
    "checked_count",
    "checked_list",
    "op_from_dict",
]
