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
  (see :meth:`Walker.control`);
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
from modelmeter.frontends.onnx import fusedparts
from modelmeter.frontends.onnx.adapters import NodeView, adapt, attributes
from modelmeter.frontends.onnx.constants import NONDETERMINISTIC, Constants
from modelmeter.frontends.onnx.load import MAX_TENSOR_ELEMENTS, dtype_name
from modelmeter.frontends.onnx.scopes import ModuleTree, node_scope
from modelmeter.frontends.onnx.shapes import ValueTypes
from modelmeter.registry import Formula, OpCall, TensorMeta, Work, ZeroCost, lookup

ALIAS_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "SequenceAt"}
NEVER_FOLDED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
FLOATING = ("float", "bfloat", "tfloat")
UNBOUNDED = float("inf")
# A Loop whose body would repeat more events than this is not unrolled (unsupported, noted).
MAX_LOOP_EVENTS = 5_000_000


@dataclass
class Val:
    """What the walk knows of a value: its shape (ints, symbols or None), dtype, storage id,
    whether it is (read as) a parameter/buffer, and whether it is known at load time."""

    dims: tuple[Any, ...] | None
    dtype: str
    sid: int
    weight: bool = False
    const: bool = False

    @property
    def complete(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) for d in self.dims)


@dataclass
class Walker:
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
        rule = fusedparts.PARTS.get(target) if entry is None else None
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

    def emit_parts(
        self, node: Any, scope: str, target: str, ins: list[Val | None],
        parts: list[fusedparts.Part],
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

    # ---- control flow --------------------------------------------------------------------
    def control(self, node: Any, scope: str, target: str, ins: list[Val | None]) -> list[OpEvent]:
        attrs = {a.name: a for a in node.attribute}
        name = node.name or target
        required = {"If": ("then_branch", "else_branch"), "Loop": ("body",),
                    "Scan": ("body", "num_scan_inputs")}[node.op_type]
        missing = [a for a in required if a not in attrs]
        if missing:
            raise InputError(
                f"{node.op_type} node {name!r} has no {' or '.join(map(repr, missing))} "
                "attribute (invalid graph)"
            )
        body_events: list[OpEvent] = []
        trips = 0
        reason = ""
        saved_bytes = self._body_bytes
        start = len(self.events)
        self._body_bytes = 0
        self._body_depth += 1
        try:
            if node.op_type == "If":
                cond = self.consts.get(node.input[0]) if node.input else None
                if cond is None or cond.size != 1:
                    reason = "its condition depends on the data"
                else:
                    branch = attrs["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]
                    body_events, trips = self.body(branch.g, scope, []), 1
            elif node.op_type == "Loop":
                m = self.consts.get(node.input[0]) if node.input and node.input[0] else None
                if m is None or m.size != 1:
                    reason = "its trip count is not a constant"
                else:
                    trips = max(0, int(m.reshape(-1)[0]))
                    body = attrs["body"].g
                    carried = [v for v in ins[2:]]
                    body_events = self.body(body, scope, [None, None, *carried])
                    if trips * max(1, len(body_events)) > MAX_LOOP_EVENTS:
                        reason = (
                            f"its trip count {trips} is too large to count op by op (a while "
                            "loop that its condition ends?)"
                        )
                        body_events, trips = [], 0
                        del self.events[start:]
                    else:
                        self.notes.append(
                            f"Loop {name!r}: body counted {trips} times (its static trip "
                            "count; an upper bound if its condition ends it earlier)"
                        )
            else:  # Scan
                body = attrs["body"].g
                n_scan = int(attrs["num_scan_inputs"].i)
                n_state = len(node.input) - n_scan
                if not 0 < n_scan <= len(node.input):
                    raise InputError(
                        f"Scan node {name!r} has num_scan_inputs {n_scan} but "
                        f"{len(node.input)} inputs (invalid graph)"
                    )
                axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else []
                first = ins[n_state]
                axis = axes[0] if axes else 0
                if first is None or not first.complete or not first.dims:
                    reason = "its sequence length is unknown"
                else:
                    trips = int(first.dims[axis % len(first.dims)])  # type: ignore[index]
                    body_events = self.body(body, scope, [*ins[:n_state], *([None] * n_scan)])
        except InputError as e:
            reason = f"its body could not be counted ({e})"
            body_events, trips = [], 0
            del self.events[start:]
        finally:
            self._body_depth -= 1
            per_iteration, self._body_bytes = self._body_bytes, saved_bytes
        if self._body_depth:
            self._body_bytes += per_iteration * trips
        else:
            self.allocated += per_iteration * trips
            self.step_extra[self.step] = per_iteration
        for out in node.output:
            if out:
                self.allocate(self.define(out, sid=self.new_sid()))
        if reason:
            self.notes.append(f"{node.op_type} {name!r} not counted: {reason}")
            call = OpCall(target, {}, (), (), self.convention)
            ev = OpEvent(scope, "onnx", target, call)
            self.events.append(ev)
            return [ev]
        if trips == 0:
            del self.events[start:]
        for _ in range(max(0, trips - 1)):
            self.events.extend(body_events)
        return body_events

    def body(self, graph: Any, scope: str, bound: list[Val | None]) -> list[OpEvent]:
        """Walk a subgraph once (its events appended once); ``bound`` gives the values of its
        formal inputs where known (None: a fresh value of the declared type)."""
        for t in graph.initializer:
            sid = self.new_sid()
            self.env[t.name] = Val(
                tuple(int(d) for d in t.dims), dtype_name(t.data_type), sid, const=True
            )
        for i, vi in enumerate(graph.input):
            src = bound[i] if i < len(bound) else None
            if src is not None:
                self.env[vi.name] = Val(
                    self.types.dims.get(vi.name, src.dims) or src.dims, src.dtype, src.sid,
                    src.weight, src.const,
                )
            else:
                self.define(vi.name, sid=self.new_sid())
        start = len(self.events)
        for node in graph.node:
            self.node(node, scope)
        return self.events[start:]


def implicit_inputs(node: Any) -> set[str]:
    """Outer values the subgraphs of a node read (names no subgraph node or input defines)."""
    names: set[str] = set()
    for a in node.attribute:
        graphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
        for g in graphs:
            defined = {vi.name for vi in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                defined.update(o for o in n.output if o)
            for n in g.node:
                names.update(i for i in n.input if i and i not in defined)
                names.update(implicit_inputs(n) - defined)
    return names


__all__ = ["ALIAS_OPS", "Val", "Walker", "implicit_inputs"]
