"""The only place that turns op events into costs and builds the module tree.

Registry lookup, byte accounting from tensor metadata and parameter bookkeeping live here;
frontends only observe, renderers only present.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import modelmeter.ops  # noqa: F401 - registers every formula the builder looks up
from modelmeter.events import OpEvent, ParamInfo, Trace
from modelmeter.registry import (
    Formula,
    OpCall,
    TensorMeta,
    Work,
    ZeroCost,
    lookup,
    unfused_bytes,
)
from modelmeter.report import Cost, ModuleNode, OpRecord, ParamStats, Report
from modelmeter.storage import Pricing, Storage, per_element

_FLOAT_PREFIXES = ("float", "bfloat", "tfloat", "complex")


def default_bytes(call: OpCall) -> tuple[int, int, int]:
    """(bytes read, bytes written, weight bytes read) of an unfused op."""
    return unfused_bytes(call.inputs, call.outputs)


def compute_dtype(call: OpCall, macs: int = 0) -> str:
    """The dtype an op computes in: for a MAC op whose data input is an integer type (int8
    QLinearConv, ConvInteger, MatMulInteger ...), that type; else its first floating input,
    else its first output."""
    if macs and call.inputs and call.inputs[0].dtype.startswith(("int", "uint")):
        return call.inputs[0].dtype
    for t in call.inputs:
        if t.dtype.startswith(_FLOAT_PREFIXES):
            return t.dtype
    for t in call.outputs:
        return t.dtype
    return "float32"


def cost_of(formula: Formula, call: OpCall) -> Cost:
    """Apply a formula and fill in the byte fields it left to the default accounting."""
    return cost_from(formula(call), call)


def cost_from(work: Work, call: OpCall) -> Cost:
    """The Cost of a formula's Work on ``call``: byte fields it left ``None`` filled in."""
    if work.bytes_read is None or work.bytes_written is None or work.weight_bytes is None:
        read, written, weight = default_bytes(call)
    else:
        read = written = weight = 0
    return Cost(
        macs=int(work.macs),
        flops=int(work.flops),
        bytes_read=int(read if work.bytes_read is None else work.bytes_read),
        bytes_written=int(written if work.bytes_written is None else work.bytes_written),
        weight_bytes=int(weight if work.weight_bytes is None else work.weight_bytes),
    )


# transformers' output heads: weight-only exports (GPTQ, AWQ) keep them in the model's dtype
OUTPUT_HEADS = ("lm_head", "embed_out")


def weight_row(call: OpCall, weight: TensorMeta) -> int:
    """The reduction length of a matrix product's weight (a Linear's ``in_features``): the one
    of its last two dimensions the activation's last dimension meets (a square weight's are
    equal), else its last; the groups of a weight format run along it."""
    dims = weight.shape[-2:]
    for t in call.inputs:
        if not t.weight and t.ndim >= 1 and t.shape[-1] in dims:
            return t.shape[-1]
    return weight.shape[-1] if weight.shape else 1


class _Priced:
    """A trace's tensors at a Pricing's storage formats. The weight format applies to every
    weight (ndim >= 2) a matrix product (family ``matmul``: mm, addmm, bmm, ONNX
    MatMul/Gemm ...) reads in the forward pass, except the output head (a module named in
    :data:`OUTPUT_HEADS`) and a weight an embedding also reads (a tied table); such a
    weight is stored, and read by every op, at the format. Embeddings, norms, biases,
    convolutions and buffers keep their dtype. KV-cache tensors (``TensorMeta.kv``) are
    priced at the KV format, per head vector of the last dimension."""

    def __init__(self, trace: Trace, pricing: Pricing) -> None:
        self.pricing = pricing
        rows = _quantized_rows(trace) if pricing.weights is not None else {}
        numel = {p.sid: p.numel for p in trace.params if p.sid in rows and not p.buffer}
        self.rows = {sid: row for sid, row in rows.items() if sid in numel}
        self.bytes = {sid: pricing.weight_bytes(numel[sid], row) or 0
                      for sid, row in self.rows.items()}  # fmt: skip
        self.weights = {sid: per_element(b, numel[sid]) for sid, b in self.bytes.items()}
        self.storage = Storage(pricing, len(self.rows), sum(numel.values()),
                               sum(self.bytes.values()))  # fmt: skip
        self.heads = _head_dims(trace) if pricing.kv is not None else {}
        self._kv: dict[int, Fraction] = {}

    def tensor(self, t: TensorMeta) -> TensorMeta:
        if t.weight and t.sid in self.weights:
            return replace(t, stored=self.weights[t.sid])
        kv = self.pricing.kv
        if t.kv and kv is not None:
            d = self.heads.get(t.sid) or (t.shape[-1] if t.shape else 1)
            if d not in self._kv:
                self._kv[d] = per_element(kv.nbytes(d, d), d)
            return replace(t, stored=self._kv[d])
        return t

    def call(self, call: OpCall) -> OpCall:
        """``call`` with its priced tensors (inputs, outputs and arguments) marked."""
        if not any(t.kv or t.sid in self.weights for t in (*call.inputs, *call.outputs)):
            return call

        priced: dict[int, TensorMeta] = {}  # one priced copy per tensor: an argument stays
        # the same object as its input (in-place ops find ``self`` among inputs by identity)

        def one(t: TensorMeta) -> TensorMeta:
            if id(t) not in priced:
                priced[id(t)] = self.tensor(t)
            return priced[id(t)]

        def arg(v: object) -> object:
            if isinstance(v, TensorMeta):
                return one(v)
            if isinstance(v, list):
                return [arg(x) for x in v]
            if isinstance(v, tuple):
                return tuple(arg(x) for x in v)
            return v

        return replace(
            call,
            args={k: arg(v) for k, v in call.args.items()},
            inputs=tuple(one(t) for t in call.inputs),
            outputs=tuple(one(t) for t in call.outputs),
        )

    def param_bytes(self, p: ParamInfo) -> int:
        return self.bytes.get(p.sid, p.nbytes) if not p.buffer else p.nbytes


def _head_dims(trace: Trace) -> dict[int, int]:
    """Storage id -> head vector length of each KV-cache storage: the last dimension of its
    first tensor in the trace (the cache as written, [batch, heads, tokens, head_dim]; a
    later transposed view, K^T of eager attention, does not change it)."""
    heads: dict[int, int] = {}
    for ev in trace.events:
        for t in (*ev.call.inputs, *ev.call.outputs):
            if t.kv and t.sid and t.sid not in heads:
                heads[t.sid] = t.shape[-1] if t.shape else 1
    return heads


def _quantized_rows(trace: Trace) -> dict[int, int]:
    """Storage id -> reduction length of each weight the weight format applies to."""
    rows: dict[int, int] = {}
    embedded: set[int] = set()
    for ev in trace.events:
        entry = lookup(ev.frontend, ev.target) if ev.phase == "forward" else None
        if not isinstance(entry, Formula):
            continue
        if entry.family == "embedding":
            embedded.update(t.sid for t in ev.call.inputs if t.weight)
        elif entry.family == "matmul" and ev.scope.rpartition(".")[2] not in OUTPUT_HEADS:
            for t in ev.call.inputs:
                if t.weight and t.ndim >= 2:
                    rows.setdefault(t.sid, weight_row(ev.call, t))
    return {sid: row for sid, row in rows.items() if sid not in embedded}


def _record(ev: OpEvent, node: ModuleNode, seq: int = -1, priced: _Priced | None = None) -> None:
    entry = lookup(ev.frontend, ev.target)
    if entry is None:
        node.unsupported[ev.key] = node.unsupported.get(ev.key, 0) + 1
        return
    if isinstance(entry, ZeroCost):
        return
    call = ev.call if priced is None else priced.call(ev.call)
    work = ev.work if ev.work is not None else entry(call)  # applied once, by whoever first
    cost = cost_from(work, call)
    node.ops.append(
        OpRecord(
            op=ev.key,
            cost=cost,
            phase=ev.phase,
            dtype=compute_dtype(call, cost.macs),
            shapes=tuple(t.shape for t in call.inputs),
            unit=work.unit,
            seq=seq,
            reads=tuple(0 if t.weight else t.sid for t in call.inputs),
            writes=tuple(t.sid for t in call.outputs),
        )
    )


def _parent_name(name: str, known: dict[str, ModuleNode]) -> str:
    while name:
        name = name.rpartition(".")[0]
        if name in known:
            return name
    return ""


def build(trace: Trace, *, pricing: Pricing | None = None) -> Report:
    """Assemble a Report from a frontend's Trace; ``pricing`` prices the bytes of the weights
    of matrix products and of KV-cache tensors at its storage formats (counts never change;
    see :class:`_Priced` for which weights)."""
    priced = None if pricing is None else _Priced(trace, pricing)
    nodes: dict[str, ModuleNode] = {}
    for info in trace.modules:
        node = ModuleNode(
            name=info.name,
            type=info.type,
            calls=info.calls,
            output_shapes=[list(s) for s in info.output_shapes],
        )
        if info.name:
            parent = nodes[_parent_name(info.name, nodes)]
            node.depth = parent.depth + 1
            parent.children.append(node)
        nodes[info.name] = node
    root = nodes[""]

    for seq, ev in enumerate(trace.events):
        _record(ev, nodes.get(ev.scope, root), seq, priced)

    read_sids = {
        t.sid for ev in trace.events if ev.phase == "forward" for t in ev.call.inputs if t.weight
    }
    for p in trace.params:
        node = nodes.get(p.owner, root)
        if p.buffer:
            add = ParamStats(buffers=p.numel, buffer_bytes=p.nbytes)
        else:
            add = ParamStats(
                params=p.numel,
                trainable=p.numel if p.trainable else 0,
                unused=0 if p.sid in read_sids else p.numel,
                param_bytes=p.nbytes if priced is None else priced.param_bytes(p),
            )
        node.own = node.own + add

    return Report(
        model=trace.model,
        frontend=trace.frontend,
        convention=trace.convention,
        mode=trace.mode,
        inputs=list(trace.inputs),
        root=root,
        activation_bytes=trace.activation_bytes,
        peak_activation_bytes=trace.peak_activation_bytes,
        notes=list(trace.notes) + ([] if priced is None else priced.storage.notes()),
        storage=None if priced is None else priced.storage,
    )


__all__ = ["build", "cost_of", "cost_from", "default_bytes", "compute_dtype", "TensorMeta"]
