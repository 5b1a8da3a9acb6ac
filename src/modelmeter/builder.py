"""The only place that turns op events into costs and builds the module tree.

Registry lookup, byte accounting from tensor metadata and parameter bookkeeping live here;
frontends only observe, renderers only present.
"""

from __future__ import annotations

import modelmeter.ops  # noqa: F401 - registers every formula the builder looks up
from modelmeter.events import OpEvent, Trace
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


def _record(ev: OpEvent, node: ModuleNode, seq: int = -1) -> None:
    entry = lookup(ev.frontend, ev.target)
    if entry is None:
        node.unsupported[ev.key] = node.unsupported.get(ev.key, 0) + 1
        return
    if isinstance(entry, ZeroCost):
        return
    call = ev.call
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
        )
    )


def _parent_name(name: str, known: dict[str, ModuleNode]) -> str:
    while name:
        name = name.rpartition(".")[0]
        if name in known:
            return name
    return ""


def build(trace: Trace) -> Report:
    """Assemble a Report from a frontend's Trace."""
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
        _record(ev, nodes.get(ev.scope, root), seq)

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
                param_bytes=p.nbytes,
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
        notes=list(trace.notes),
    )


__all__ = ["build", "cost_of", "cost_from", "default_bytes", "compute_dtype", "TensorMeta"]
