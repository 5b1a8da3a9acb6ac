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

from dataclasses import dataclass, field
from typing import Any

from modelmeter.errors import InputError
from modelmeter.events import OpEvent
from modelmeter.frontends.onnx.adapters import NodeView, adapt, attributes
from modelmeter.frontends.onnx.load import dtype_name
from modelmeter.frontends.onnx.scopes import ModuleTree, node_scope
from modelmeter.frontends.onnx.shapes import NONDETERMINISTIC, Constants, ValueTypes
from modelmeter.registry import Formula, OpCall, TensorMeta, ZeroCost, lookup

ALIAS_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "SequenceAt"}
NEVER_FOLDED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
FLOATING = ("float", "bfloat", "tfloat")
UNBOUNDED = float("inf")


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
    allocated: int = 0  # bytes of every activation written, loops' bodies once per iteration
    step: int = -1  # index of the main-graph node being walked
    step_allocs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    step_extra: dict[int, int] = field(default_factory=dict)  # transient bytes of a body
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
        return TensorMeta(tuple(v.dims), v.dtype, v.sid, v.weight)  # type: ignore[arg-type]

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
        return (
            f"{where}: the shape of {name!r} is unknown (ONNX shape inference could not "
            "determine it; it may depend on the data)"
        )

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
        args, call_in, call_out = adapt(view)
        call = OpCall(target, args, call_in, call_out, self.convention)
        ev = OpEvent(scope, "onnx", target, call)
        self.scope_ops.setdefault(scope, set()).add(node.op_type)
        for v in outs:
            if v is not None:
                self.allocate(v)
        self.events.append(ev)
        return [ev]

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
        body_events: list[OpEvent] = []
        trips = 0
        reason = ""
        saved_bytes = self._body_bytes
        start = len(self.events)
        self._body_bytes = 0
        self._body_depth += 1
        try:
            if node.op_type == "If":
                cond = self.consts.get(node.input[0])
                if cond is None:
                    reason = "its condition depends on the data"
                else:
                    branch = attrs["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]
                    body_events, trips = self.body(branch.g, scope, []), 1
            elif node.op_type == "Loop":
                m = self.consts.get(node.input[0]) if node.input and node.input[0] else None
                if m is None:
                    reason = "its trip count is not a constant"
                else:
                    trips = int(m.reshape(-1)[0])
                    body = attrs["body"].g
                    carried = [v for v in ins[2:]]
                    body_events = self.body(body, scope, [None, None, *carried])
                    self.notes.append(
                        f"Loop {name!r}: body counted {trips} times (its static trip count; an "
                        "upper bound if its condition ends it earlier)"
                    )
            else:  # Scan
                body = attrs["body"].g
                n_scan = int(attrs["num_scan_inputs"].i)
                n_state = len(node.input) - n_scan
                axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else []
                first = ins[n_state]
                axis = axes[0] if axes else 0
                if first is None or not first.complete:
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
