"""Embedding lookups and bags.

A lookup reads only the rows it gathers (plus the indices): the weight bytes of an embedding
are the gathered rows, not the whole table.
"""

from __future__ import annotations

import math

from modelmeter.ops.movement import gathered
from modelmeter.registry import OpCall, TensorMeta, Work, register_op
from modelmeter.units import DTYPE_BYTES

_BAG_MODES = {0: "sum", 1: "mean", 2: "max", "sum": "sum", "mean": "mean", "max": "max"}


@register_op("embedding", family="embedding", aten=["embedding"])
def embedding(call: OpCall) -> Work:
    """embedding(weight, idx): 0 FLOPs; reads idx and one row of the table per index
    (output-sized: idx.numel * dim), writes the output. Weight bytes = the gathered rows."""
    weight, idx = call.args["weight"], call.args["indices"]
    return gathered(call, weight, [idx], call.out.numel)


@register_op(
    "embedding_bag",
    family="embedding",
    aten=["embedding_bag", "_embedding_bag", "_embedding_bag_forward_only"],
)
def embedding_bag(call: OpCall) -> Work:
    """embedding_bag: N indices gathered into B bags of D-wide rows.
    sum: each bag of n_i rows needs (n_i - 1)*D adds: (N - B)*D in all; mean adds a divide per
    output: (N - B)*D + B*D = N*D; max: (N - B)*D compares; per_sample_weights (sum mode)
    multiply every gathered row first: + N*D. Reads the indices, offsets, per-sample weights
    and the N gathered rows (weight bytes = those rows).
    Writes the (B, D) output and the bookkeeping the CPU kernel fills: mean and max also
    offset2bag (N) and bag_size (B), max also the (B, D) argmax indices, all in the index
    dtype. (The shapes of these extra outputs differ between the meta and the CPU kernels and
    the sum kernel leaves them unfilled, so they are counted by mode, not by shape.)"""
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
    work = gathered(call, weight, others, n * width, flops=flops)
    index_dtype = call.outputs[1].dtype if len(call.outputs) > 1 else idx.dtype
    extra = 0
    if mode in ("mean", "max"):
        extra += n + bags
    if mode == "max":
        extra += bags * width
    written = out.nbytes + math.ceil(extra * DTYPE_BYTES.get(index_dtype, 8))
    return Work(flops=flops, bytes_read=work.bytes_read, bytes_written=written,
                weight_bytes=work.weight_bytes)


@register_op("embedding_dense_backward", family="embedding", aten=["embedding_dense_backward"])
def embedding_dense_backward(call: OpCall) -> Work:
    """Gradient of an embedding: every one of the N*D incoming gradient values is added into
    its row of the (zeroed) table gradient: N*D adds (grad_output.numel)."""
    grad = call.args.get("grad_output")
    n = grad.numel if isinstance(grad, TensorMeta) else call.inputs[0].numel
    return Work(flops=n)


@register_op("embedding_renorm", family="embedding", aten=["embedding_renorm_"])
def embedding_renorm(call: OpCall) -> Work:
    """embedding_renorm_ (``max_norm``): the looked-up rows of the table are rescaled in place
    to norm <= max_norm before the lookup. The kernel sorts the N indices to visit each row
    once (N*ceil(log2 N) compares, N - 1 compares to skip repeats); for each of the (at most
    N) distinct rows of D values: the p-norm (p = 2: D squares, D - 1 adds, a sqrt = 2D;
    p = 1: 2D - 1; other p: 3D), a compare with max_norm, the scale
    ``max_norm / (norm + 1e-7)`` (2) and D multiplies. Which rows exceed max_norm depends on
    the data: every row is counted as rescaled (an upper bound), each index as a distinct row.
    Reads the indices and the N rows; writes the N rows."""
    table, idx = call.args.get("self"), call.args.get("indices")
    if not isinstance(table, TensorMeta):
        table = call.inputs[0]
    if not isinstance(idx, TensorMeta):
        idx = call.inputs[1]
    n = idx.numel
    d = table.shape[-1] if table.ndim else 1
    p = float(call.arg("norm_type", 2.0))
    norm = 2 * d if p == 2 else (2 * d - 1 if p == 1 else 3 * d)
    sort = n * (max(n - 1, 0).bit_length()) + max(0, n - 1)
    rows = math.ceil(n * d * DTYPE_BYTES.get(table.dtype, 4))
    weight = rows if table.weight else 0
    return Work(
        flops=sort + n * (norm + 3 + d),
        bytes_read=idx.nbytes + rows,
        bytes_written=rows,
        weight_bytes=weight,
    )


@register_op("embedding_bag_backward", family="embedding", aten=["_embedding_bag_backward",
                                             "_embedding_bag_dense_backward"])
def embedding_bag_backward(call: OpCall) -> Work:
    """Gradient of embedding_bag for the table (dense): every one of the N looked-up rows
    receives its bag's D-wide gradient, added into the (zeroed) table gradient: N*D adds;
    mean mode first divides each bag's gradient by the bag size: + N*D; per_sample_weights
    multiply each row's gradient: + N*D; max mode adds only the B*D gradient values into the
    argmax rows: B*D adds. Reads the gradient, indices, offsets and per-sample weights and the
    forward's bookkeeping by mode (mean: offset2bag and bag_size, max: the argmax indices;
    counted by mode, as in the forward), writes the table gradient."""
    grad, idx = call.args.get("grad"), call.args.get("indices")
    if not isinstance(grad, TensorMeta) or not isinstance(idx, TensorMeta):
        grad, idx = call.inputs[0], call.inputs[1]
    d = grad.shape[-1] if grad.ndim else 1
    bags = grad.numel // d if d else 0
    mode = _BAG_MODES.get(call.args.get("mode", 0), "sum")
    n = idx.numel
    psw = call.args.get("per_sample_weights")
    if mode == "max":
        flops = grad.numel
    else:
        flops = n * d * (2 if mode == "mean" else 1)
        if isinstance(psw, TensorMeta):
            flops += n * d
    read = [grad, idx, call.args.get("offsets"), psw]
    read_bytes = sum(t.nbytes for t in read if isinstance(t, TensorMeta))
    book = (n + bags) if mode == "mean" else (bags * d if mode == "max" else 0)
    read_bytes += math.ceil(book * DTYPE_BYTES.get(idx.dtype, 8))
    return Work(flops=flops, bytes_read=read_bytes, bytes_written=sum(t.nbytes for t in call.outputs),
                weight_bytes=0)
