"""Embedding lookups and bags.

A lookup reads only the rows it gathers (plus the indices): the weight bytes of an embedding
are the gathered rows, not the whole table.
"""

from __future__ import annotations

from modelmeter.ops.movement import gathered
from modelmeter.registry import OpCall, TensorMeta, Work, register_op

_BAG_MODES = {0: "sum", 1: "mean", 2: "max", "sum": "sum", "mean": "mean", "max": "max"}


@register_op("embedding", aten=["embedding"])
def embedding(call: OpCall) -> Work:
    """embedding(weight, idx): 0 FLOPs; reads idx and one row of the table per index
    (output-sized: idx.numel * dim), writes the output. Weight bytes = the gathered rows."""
    weight, idx = call.args["weight"], call.args["indices"]
    return gathered(call, weight, [idx], call.out.numel)


@register_op(
    "embedding_bag",
    aten=["embedding_bag", "_embedding_bag", "_embedding_bag_forward_only"],
)
def embedding_bag(call: OpCall) -> Work:
    """embedding_bag: N indices gathered into B bags of D-wide rows.
    sum: each bag of n_i rows needs (n_i - 1)*D adds: (N - B)*D in all; mean adds a divide per
    output: (N - B)*D + B*D = N*D; max: (N - B)*D compares; per_sample_weights (sum mode)
    multiply every gathered row first: + N*D. Reads the indices, offsets, per-sample weights
    and the N gathered rows (weight bytes = those rows); writes all outputs."""
    weight, idx = call.args["weight"], call.args["indices"]
    out = call.out
    bags = out.shape[0] if out.ndim > 1 else 1
    width = out.shape[-1] if out.ndim else 1
    n = idx.numel
    mode = _BAG_MODES.get(call.args.get("mode", 0), "sum")
    flops = max(0, n - bags) * width
    if mode == "mean":
        flops += bags * width
    psw = call.args.get("per_sample_weights")
    if isinstance(psw, TensorMeta):
        flops += n * width
    others = [t for t in call.inputs if t is not weight]
    return gathered(call, weight, others, n * width, flops=flops)


@register_op("embedding_dense_backward", aten=["embedding_dense_backward"])
def embedding_dense_backward(call: OpCall) -> Work:
    """Gradient of an embedding: every one of the N*D incoming gradient values is added into
    its row of the (zeroed) table gradient: N*D adds (grad_output.numel)."""
    grad = call.args.get("grad_output")
    n = grad.numel if isinstance(grad, TensorMeta) else call.inputs[0].numel
    return Work(flops=n)
