"""Walking a fused onnxruntime node as the standard ops it fuses (the rules that say which:
:mod:`.fusedparts`): one event per part, each counted by its own formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelmeter.events import OpEvent
from modelmeter.frontends.onnx.adapters import NodeView
from modelmeter.frontends.onnx.fusedparts import Part
from modelmeter.frontends.onnx.values import Val
from modelmeter.registry import Formula, OpCall, TensorMeta, Work, lookup


class FusedNodes:
    """The walker's fused nodes (a mixin of :class:`.walk.Walker`, whose state it uses)."""

    events: list[OpEvent]
    consts: Any
    scope_ops: dict[str, set[str]]
    fused: dict[str, int]
    new_sid: Callable[[], int]
    define: Callable[..., Val]
    allocate: Callable[[Val], None]
    meta: Callable[[Val, str, bool, Any], TensorMeta]
    _call: Callable[[NodeView, Any], OpCall]
    _work: Callable[[Formula, OpCall, Any], Work]

    def emit_parts(
        self, node: Any, scope: str, target: str, ins: list[Val | None],
        parts: list[Part],
    ) -> list[OpEvent]:
        """A fused node counted as the standard ops it fuses (one event each, see
        :mod:`.contrib`); intermediates have the shape of the node's first output."""
        outs = [self.define(o, sid=self.new_sid()) if o else None for o in node.output]
        first = outs[0] if outs else None
        temps: dict[str, tuple[str, Val]] = {}

        def operand(ref: Any) -> tuple[str, Val] | None:
            if ref is None:
                return None
            if isinstance(ref, tuple) and ref[0] == "view":  # the same storage, other dims
                seen = operand(ref[1])
                if seen is None:
                    return None
                v = seen[1]
                return seen[0], Val(tuple(ref[2]), v.dtype, v.sid, v.weight, v.const)
            if isinstance(ref, int):
                v = ins[ref] if ref < len(ins) else None
                return None if v is None else (node.input[ref], v)
            if isinstance(ref, tuple) and ref[0] == "T":  # the operand transposed
                name, v = node.input[ref[1]], ins[ref[1]]
                assert v is not None
                dims = v.dims
                if dims is not None and len(dims) >= 2:
                    dims = (*dims[:-2], dims[-1], dims[-2])
                return name, Val(dims, v.dtype, v.sid, v.weight, v.const)
            if isinstance(ref, tuple) and ref[0] == "out":  # written by an earlier part
                v = outs[ref[1]]
                assert v is not None
                return node.output[ref[1]], v
            if isinstance(ref, tuple) and ref[0] == "scalar":
                dtype = ins[0].dtype if ins and ins[0] is not None else "float32"
                return "", Val((), dtype, self.new_sid(), const=True)
            return temps[ref]

        def result(ref: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[str, Val] | None:
            if isinstance(ref, tuple) and ref[0] == "view":
                seen = result(ref[1], shapes)
                if seen is None:
                    return None
                v = seen[1]
                return seen[0], Val(tuple(ref[2]), v.dtype, v.sid, v.weight, v.const)
            if isinstance(ref, int):
                v = outs[ref] if ref < len(outs) else None
                return None if v is None else (node.output[ref], v)
            if ref not in temps:
                assert first is not None
                dims = shapes.get(ref, first.dims)
                temps[ref] = (f"{node.output[0]}/{ref}", Val(dims, first.dtype, self.new_sid()))
            return temps[ref]

        events = []
        for part in parts:
            ins_p = [operand(r) for r in part.inputs]
            outs_p = [result(r, part.shapes) for r in part.outputs]
            in_metas = [None if p is None else self.meta(p[1], p[0], True, node) for p in ins_p]
            out_metas = [None if p is None else self.meta(p[1], p[0], True, node)
                         for p in outs_p]

            def value(i: int, ins_p: list[tuple[str, Val] | None] = ins_p) -> Any:
                p = ins_p[i] if i < len(ins_p) else None
                return self.consts.get(p[0]) if p is not None and p[0] else None

            view = NodeView(part.op, dict(part.attrs), in_metas, out_metas, value)
            call = self._call(view, node)
            formula = lookup("onnx", part.op)
            assert isinstance(formula, Formula)
            work = self._work(formula, call, node)
            events.append(OpEvent(scope, "onnx", part.op, call, work=work))
        self.scope_ops.setdefault(scope, set()).add(node.op_type)
        for v in outs:
            if v is not None:
                self.allocate(v)
        self.events.extend(events)
        self.fused[target] = self.fused.get(target, 0) + 1
        return events


__all__ = ["FusedNodes"]
