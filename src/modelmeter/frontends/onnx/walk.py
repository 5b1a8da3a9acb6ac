"""Walking an ONNX graph in node order and emitting the events the builder counts.

Each node is one of:

- *folded at load time*: every input is a constant (initializer, Constant node, or the
  output of another folded node) and the op is deterministic: ONNX runtimes compute it once
  when they load the model (constant folding), so it costs nothing per inference. Its output
  stays a constant; when it is a transform of a parameter (``Transpose(W)``, ``Reshape(b)``)
  it still counts as that parameter being read. QuantizeLinear/DequantizeLinear are never
  folded (runtimes keep them to run integer kernels). Shape/Size of a statically known shape
  are constants too.
- *zero-cost* (registry): aliases of their input (Reshape, Squeeze, Identity ...) or metadata;
- *control flow* (If, Loop, Scan): the body is walked and its events repeated per iteration
  (see :mod:`.control`); fused onnxruntime nodes are walked as their parts (:mod:`.fused`);
- anything else: one event, counted by the formula its op type names, or reported as
  unsupported by the builder.

Lifetimes of activations (for the peak) follow the node order: a value lives from the node
that writes it to the last node that reads it (aliases extend their source's life); graph
inputs live from the start, graph outputs to the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelmeter.errors import InputError
from modelmeter.events import OpEvent
from modelmeter.frontends.onnx.adapters import NodeView, adapt, attributes
from modelmeter.frontends.onnx.constants import NONDETERMINISTIC, Constants
from modelmeter.frontends.onnx.control import ControlFlow, implicit_inputs
from modelmeter.frontends.onnx.fused import FusedNodes
from modelmeter.frontends.onnx.fusedparts import PARTS
from modelmeter.frontends.onnx.load import MAX_TENSOR_ELEMENTS, dtype_name
from modelmeter.frontends.onnx.scopes import ModuleTree, node_scope
from modelmeter.frontends.onnx.shapes import ValueTypes
from modelmeter.frontends.onnx.values import Val
from modelmeter.registry import Formula, OpCall, TensorMeta, Work, ZeroCost, lookup

ALIAS_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "SequenceAt"}
NEVER_FOLDED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
FLOATING = ("float", "bfloat", "tfloat")
UNBOUNDED = float("inf")


@dataclass
class Walker(ControlFlow, FusedNodes):
    """Walks the main graph (and bodies of control flow) once, collecting events."""

    types: ValueTypes
    consts: Constants
    convention: str
    cast: str | None
    tree: ModuleTree
    input_symbols: set[str]
    events: list[OpEvent] = field(default_factory=list)
    env: dict[str, Val] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # initializer -> first consumer scope
    initializer_sids: dict[str, int] = field(default_factory=dict)
    scope_ops: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    folded: int = 0
    fused: dict[str, int] = field(default_factory=dict)  # fused op -> nodes counted as parts
    allocated: int = 0  # bytes of every activation written, loops' bodies once per iteration
    step: int = -1  # index of the main-graph node being walked
    step_allocs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    step_extra: dict[int, int] = field(default_factory=dict)  # transient bytes of a body
    # why shape inference failed (strict inference, run only when a shape is missing)
    diagnose: Callable[[], str | None] | None = None
    graph_inputs: set[str] = field(default_factory=set)
    _body_depth: int = 0
    _body_bytes: int = 0
    repeated: int = 0  # events repeated by Loop and Scan (bounded: control.py)
    _next_sid: int = 1

    # ---- values --------------------------------------------------------------------------
    def new_sid(self) -> int:
        sid = self._next_sid
        self._next_sid += 1
        return sid

    def dtype_of(self, name: str) -> str:
        dt = dtype_name(self.types.elem.get(name, 0))
        if self.cast and dt.startswith(FLOATING):
            return self.cast
        return dt

    def define(self, name: str, **kw: Any) -> Val:
        v = Val(self.types.dims.get(name), self.dtype_of(name), **kw)
        self.env[name] = v
        return v

    def meta(self, v: Val, name: str, need: bool, node: Any) -> TensorMeta:
        if not v.complete:
            if need:
                raise InputError(self._unknown_message(v, name, node))
            return TensorMeta((), v.dtype, v.sid, v.weight)
        dims = tuple(v.dims)  # type: ignore[arg-type]
        if any(d < 0 for d in dims) or math.prod(dims) > MAX_TENSOR_ELEMENTS:
            raise InputError(
                f"cannot count node {node.name or node.op_type!r} ({node.op_type}): {name!r} "
                f"would have shape {list(dims)}, which no tensor can have (a negative dimension "
                "or more than 2^63 - 1 elements: check the graph and the input dimensions)"
            )
        return TensorMeta(dims, v.dtype, v.sid, v.weight)

    def _unknown_message(self, v: Val, name: str, node: Any) -> str:
        where = f"cannot count node {node.name or node.op_type!r} ({node.op_type})"
        symbols = [d for d in (v.dims or ()) if isinstance(d, str)]
        named = [s for s in symbols if s in self.input_symbols]
        if named:
            first = named[0]
            return (
                f"{where}: dimension {', '.join(repr(s) for s in named)} of {name!r} is not "
                f"set: set it with --dim {first}=N (API: dims={{{first!r}: N}}) or give the "
                "input's shape"
            )
        unset = sorted(self.input_symbols)
        if unset:
            dims = ", ".join(repr(s) for s in unset)
            return (
                f"{where}: the shape of {name!r} is unknown because input dimension(s) {dims} "
                f"are not set: set them with --dim {unset[0]}=N ... or give the inputs' shapes"
            )
        origin = self._unknown_origin(name)
        if origin is not None and origin[0] == "input":
            return (
                f"{where}: the shape of {name!r} is unknown because graph input "
                f"{origin[1]!r} has no shape or an unnamed dimension in the graph: give its "
                "shape with --input (by position, or NAME=SHAPE)"
            )
        if origin is not None:
            op, who = origin
            return (
                f"{where}: the shape of {name!r} is unknown: it follows {who} ({op}), an op "
                "whose output shapes modelmeter does not know (for an onnxruntime-optimised "
                "model, save it at ORT_ENABLE_EXTENDED or lower: ORT_ENABLE_ALL adds "
                "layout-specific ops)"
            )
        why = self.diagnose() if self.diagnose is not None else None
        if why:
            return f"{where}: the shape of {name!r} is unknown; ONNX shape inference: {why}"
        return (
            f"{where}: the shape of {name!r} is unknown (ONNX shape inference could not "
            "determine it; it may depend on the data)"
        )

    def _unknown_origin(self, name: str) -> tuple[str, str] | None:
        """Where the unknown shape of ``name`` comes from, following producers through
        values of unknown shape: ("input", NAME) for a graph input whose shape the graph does
        not give, or (op, node) for an op of another domain without a shape rule."""
        from modelmeter.frontends.onnx.shapes import CUSTOM_SHAPES

        stack, seen = [name], set()
        while stack and len(seen) < 100_000:
            value = stack.pop()
            if value in seen or self.types.complete(value):
                continue
            seen.add(value)
            producer = self.consts.producer.get(value)
            if producer is None:
                if value in self.graph_inputs:
                    dims = self.types.dims.get(value)
                    if dims is None or any(d is None for d in dims):
                        return "input", value
                continue
            if producer.domain not in ("", "ai.onnx") and (
                (producer.domain, producer.op_type) not in CUSTOM_SHAPES
            ):
                return f"{producer.domain}.{producer.op_type}", repr(
                    producer.name or producer.op_type
                )
            stack.extend(i for i in producer.input if i)
        return None

    def nbytes(self, v: Val) -> int:
        if not v.complete:
            return 0
        return TensorMeta(tuple(v.dims), v.dtype).nbytes  # type: ignore[arg-type]

    # ---- lifetimes -----------------------------------------------------------------------
    def allocate(self, v: Val) -> None:
        n = self.nbytes(v)
        if self._body_depth:
            self._body_bytes += n
            return
        self.allocated += n
        self.step_allocs.setdefault(self.step, []).append((v.sid, n))

    def peak(self, graph: Any, inputs: list[str]) -> int:
        """Peak of live activation bytes over the main graph (see the module docstring)."""
        last: dict[int, float] = {}

        def mark(name: str, step: float) -> None:
            v = self.env.get(name)
            if v is not None and not v.const and not v.weight:
                last[v.sid] = max(last.get(v.sid, -1), step)

        for i, node in enumerate(graph.node):
            for name in node.input:
                if name:
                    mark(name, i)
            for name in implicit_inputs(node):
                mark(name, i)
        for vi in graph.output:
            mark(vi.name, UNBOUNDED)
        live = 0
        sizes: dict[int, int] = {}
        for name in inputs:
            v = self.env.get(name)
            if v is not None and v.sid not in sizes:
                sizes[v.sid] = self.nbytes(v)
                live += sizes[v.sid]
        peak = live
        self.timeline = [live]  # live bytes at each step (sweeps follow each moment's size)
        dying: dict[float, list[int]] = {}
        for sid in sizes:
            dying.setdefault(last.get(sid, -1), []).append(sid)
        for sid in dying.pop(-1, []):
            live -= sizes.pop(sid)
        for i in range(len(graph.node)):
            for sid, n in self.step_allocs.get(i, ()):
                sizes[sid] = n
                live += n
                dying.setdefault(max(last.get(sid, i), i), []).append(sid)
            peak = max(peak, live + self.step_extra.get(i, 0))
            self.timeline.append(live + self.step_extra.get(i, 0))
            for sid in dying.pop(i, []):
                live -= sizes.pop(sid, 0)
        return peak

    # ---- nodes ---------------------------------------------------------------------------
    def scope(self, node: Any, default: str = "") -> str:
        s = node_scope(node)
        return self.tree.resolve(s.name) if s.chain else default

    def target(self, node: Any) -> str:
        domain = node.domain
        return node.op_type if domain in ("", "ai.onnx") else f"{domain}.{node.op_type}"

    def inputs(self, node: Any) -> list[Val | None]:
        vals: list[Val | None] = []
        for name in node.input:
            if not name:
                vals.append(None)
                continue
            v = self.env.get(name)
            if v is None:
                if name in self.consts.producer:
                    raise InputError(
                        f"node {node.name or node.op_type!r} reads {name!r} before the node "
                        "that writes it (invalid graph: the nodes are not in topological "
                        "order, or they form a cycle)"
                    )
                raise InputError(
                    f"node {node.name or node.op_type!r} reads {name!r}, which no node, "
                    "input or initializer defines (invalid graph)"
                )
            vals.append(v)
        return vals

    def record_owner(self, node: Any, scope: str) -> None:
        for name in node.input:
            if name in self.initializer_sids and name not in self.owners:
                self.owners[name] = scope

    def node(self, node: Any, default_scope: str = "") -> list[OpEvent]:
        """Walk one node (appending its events); returns the events it emitted."""
        scope = self.scope(node, default_scope)
        self.record_owner(node, scope)
        target = self.target(node)
        ins = self.inputs(node)
        present = [v for v in ins if v is not None]
        if node.op_type in ("If", "Loop", "Scan") and node.domain in ("", "ai.onnx"):
            return self.control(node, scope, target, ins)
        if self._foldable(node, present):
            self.folded += 1
            weight_src = next((v for v in present if v.weight), None)
            for out in node.output:
                if out:
                    if weight_src is not None:
                        self.define(out, sid=weight_src.sid, weight=True, const=True)
                    else:
                        self.define(out, sid=self.new_sid(), const=True)
            return []
        entry = lookup("onnx", target)
        rule = PARTS.get(target) if entry is None else None
        if rule is not None:

            def dims(i: int) -> tuple[int, ...]:
                v = ins[i] if i < len(ins) else None
                if v is None:
                    raise InputError(
                        f"cannot count node {node.name or node.op_type!r} ({node.op_type}): "
                        f"its input {i} is missing"
                    )
                return self.meta(v, node.input[i], True, node).shape

            parts = rule(node, attributes(node), dims)
            if parts is not None and all(isinstance(lookup("onnx", p.op), Formula)
                                         for p in parts):
                return self.emit_parts(node, scope, target, ins, parts)
        if isinstance(entry, ZeroCost):
            for i, out in enumerate(node.output):
                if not out:
                    continue
                if i == 0 and node.op_type in ALIAS_OPS and present:
                    src = present[0]
                    self.define(out, sid=src.sid, weight=src.weight, const=src.const)
                else:
                    self.define(out, sid=self.new_sid())
            return []
        return self.emit(node, scope, target, ins, entry)

    def _foldable(self, node: Any, present: list[Val]) -> bool:
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op in NONDETERMINISTIC or op in NEVER_FOLDED:
            return False
        if op == "Constant":
            return True
        if op in ("Shape", "Size"):
            return bool(present) and present[0].complete
        return bool(present) and all(v.const for v in present)

    def emit(
        self, node: Any, scope: str, target: str, ins: list[Val | None], entry: Any
    ) -> list[OpEvent]:
        counted = isinstance(entry, Formula)
        in_metas = [
            None if v is None else self.meta(v, name, counted, node)
            for v, name in zip(ins, node.input)
        ]
        outs: list[Val | None] = []
        for out in node.output:
            outs.append(self.define(out, sid=self.new_sid()) if out else None)
        out_metas = [
            None if v is None else self.meta(v, name, counted and name not in self.types.sequence,
                                             node)
            for v, name in zip(outs, node.output)
        ]
        view = NodeView(target, attributes(node), in_metas, out_metas, self._value_of(node))
        call = self._call(view, node)
        work = self._work(entry, call, node) if counted else None
        ev = OpEvent(scope, "onnx", target, call, work=work)
        self.scope_ops.setdefault(scope, set()).add(node.op_type)
        for v in outs:
            if v is not None:
                self.allocate(v)
        self.events.append(ev)
        return [ev]

    def _work(self, formula: Formula, call: OpCall, node: Any) -> Work:
        """Apply the formula, once, here (the event carries the result to the builder), so
        that a graph whose shapes do not fit its op (which ONNX's lenient shape inference
        lets through) fails as one clear error naming the node, not inside the builder."""
        try:
            return formula(call)
        except Exception as e:  # noqa: BLE001 - any formula on any shapes
            shapes = ", ".join("x".join(map(str, t.shape)) or "scalar" for t in call.inputs)
            raise InputError(
                f"cannot count node {node.name or node.op_type!r} ({node.op_type}): its inputs "
                f"({shapes}) do not fit the op ({type(e).__name__}: {e}); an invalid graph? "
                "(--debug shows where)"
            ) from e

    def _call(self, view: NodeView, node: Any) -> OpCall:
        """The OpCall a formula sees for ``view`` (a node, or one part of a fused node)."""
        try:
            args, call_in, call_out = adapt(view)
        except InputError as e:
            raise InputError(
                f"cannot count node {node.name or node.op_type!r} ({node.op_type}): {e} "
                "(invalid graph)"
            ) from None
        return OpCall(view.op, args, call_in, call_out, self.convention)

    def _value_of(self, node: Any) -> Any:
        def value(i: int) -> Any:
            if i >= len(node.input) or not node.input[i]:
                return None
            return self.consts.get(node.input[i])

        return value


__all__ = ["ALIAS_OPS", "Val", "Walker", "implicit_inputs"]
