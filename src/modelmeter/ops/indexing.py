"""Indexing: advanced indexing, gathers and scatters (family ``movement``).

No arithmetic (0 MACs, 0 FLOPs) except where stated (scatter_add, index_add and accumulating
index_put add). Bytes (the rules in :mod:`modelmeter.ops.movement`):

- gather-like ops (index, index_select, gather, take) read the index tensors plus only the
  selected source elements (as many as the output holds), not the whole source;
- in-place scatters (scatter_, index_put_, index_add_ ...) read their indices and updates and
  write only the updated elements (accumulating ones also read those elements).
"""

from __future__ import annotations

import math

from modelmeter.ops.movement import (
    elem_bytes,
    gathered,
    in_place,
    other_tensors,
    reads,
    self_tensor,
    tensors_of,
)
from modelmeter.registry import OpCall, TensorMeta, Work, register_op


@register_op(
    "index", family="movement", aten=["index", "_unsafe_index"], onnx=["GatherND", "Slice"]
)
def index(call: OpCall) -> Work:
    """x[idx, ...] (advanced indexing): 0 FLOPs; reads the index tensors and the selected
    elements (output-sized) of x, writes the output."""
    src = self_tensor(call)
    return gathered(call, src, other_tensors(call, "self"), call.out.numel)


@register_op("masked_index", family="movement", aten=["_unsafe_masked_index"])
def masked_index(call: OpCall) -> Work:
    """where(mask, x[idx], fill): 1 select per output element; reads mask, indices and the
    selected elements of x (output-sized)."""
    src = self_tensor(call)
    return gathered(call, src, other_tensors(call, "self"), call.out.numel, flops=call.out.numel)


@register_op("index_select", family="movement", aten=["index_select"], onnx=["Gather"])
def index_select(call: OpCall) -> Work:
    """index_select(x, dim, idx): 0 FLOPs; reads idx and the selected slices of x
    (output-sized), writes the output."""
    src = self_tensor(call)
    return gathered(call, src, other_tensors(call, "self"), call.out.numel)


@register_op(
    "gather", family="movement", aten=["gather", "take", "take_along_dim"], onnx=["GatherElements"]
)
def gather(call: OpCall) -> Work:
    """gather(x, dim, idx) / take: 0 FLOPs; reads idx and one element of x per output."""
    src = self_tensor(call)
    return gathered(call, src, other_tensors(call, "self"), call.out.numel)


def _scatter_flops(call: OpCall, updates: int) -> int:
    op = call.op.rstrip("_")
    reduce = call.args.get("reduce")
    if op == "scatter_add":
        return updates
    if op == "scatter_reduce":
        return updates + (call.out.numel if reduce == "mean" else 0)
    if op == "scatter" and reduce is not None:
        return updates
    return 0


@register_op(
    "scatter",
    family="movement",
    aten=["scatter", "scatter_", "scatter_add", "scatter_add_", "scatter_reduce",
          "scatter_reduce_"],
    onnx=["ScatterElements", "Scatter"],
)
def scatter(call: OpCall) -> Work:
    """scatter(x, dim, idx, src): 0 FLOPs. scatter_add (and scatter with reduce='add' /
    'multiply', scatter_reduce 'sum'/'prod'/'amax'/'amin'): 1 op per index element; reduce
    'mean' adds 1 divide per output element. Out of place it reads x, idx and src and writes
    the output; in place it reads idx and the idx-sized part of src (and, when it accumulates,
    the updated elements) and writes only the updated elements."""
    idx = call.args.get("index")
    updates = idx.numel if isinstance(idx, TensorMeta) else call.out.numel
    flops = _scatter_flops(call, updates)
    if not in_place(call):
        return Work(flops=flops)
    src = call.args.get("src")
    upd = elem_bytes(updates, call.out)
    extra = (upd if isinstance(src, TensorMeta) else 0) + (upd if flops else 0)
    index_t = tensors_of(idx)
    w = reads(index_t, written=upd, extra=extra)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=upd,
                weight_bytes=w.weight_bytes)


def _put_count(call: OpCall) -> int:
    """Elements updated by index_put: the values' count when not broadcast from a scalar,
    else (broadcast index count) x (size of the dims the indices leave whole); a boolean
    mask counts all its elements (an upper bound: the true count depends on the data)."""
    values = call.args.get("values")
    if isinstance(values, TensorMeta) and values.numel > 1:
        return values.numel
    x = self_tensor(call)
    indices = call.args.get("indices") or ()
    index_count = 1
    shapes = []
    for t in tensors_of(indices):  # None entries keep a whole dimension (counted below)
        if t.dtype in ("bool", "uint8"):
            index_count *= t.numel
        else:
            shapes.append(t.shape)
    if shapes:
        nd = max(len(s) for s in shapes)
        bshape = [1] * nd
        for s in shapes:
            for i, d in enumerate(s):
                j = nd - len(s) + i
                bshape[j] = max(bshape[j], d)
        index_count *= math.prod(bshape)
    kept = [d for i, d in enumerate(x.shape) if not _indexed(indices, i)]
    return index_count * math.prod(kept)


def _indexed(indices: tuple, dim: int) -> bool:
    """Whether ``dim`` of the source is consumed by a tensor index."""
    pos = 0
    for t in indices:
        width = t.ndim if isinstance(t, TensorMeta) and t.dtype in ("bool", "uint8") else 1
        if pos <= dim < pos + width:
            return isinstance(t, TensorMeta)
        pos += width
    return False


@register_op(
    "index_put",
    family="movement",
    aten=["index_put", "index_put_", "_index_put_impl_", "_unsafe_index_put",
          "_unsafe_masked_index_put_accumulate"],
    onnx=["ScatterND"],
)
def index_put(call: OpCall) -> Work:
    """x[idx] = v: 0 FLOPs; with ``accumulate`` (x[idx] += v) 1 add per updated element.
    Out of place it reads x, the indices and v and writes the output; in place it reads the
    indices and v (and the updated elements when accumulating) and writes only the updated
    elements."""
    updates = _put_count(call)
    accumulate = bool(call.arg("accumulate", False)) or "accumulate" in call.op
    flops = updates if accumulate else 0
    if not in_place(call):
        return Work(flops=flops)
    upd = elem_bytes(updates, call.out)
    w = reads(other_tensors(call, "self"), written=upd, extra=upd if accumulate else 0)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=upd,
                weight_bytes=w.weight_bytes)


@register_op("index_add", family="movement", aten=["index_add", "index_add_"])
def index_add(call: OpCall) -> Work:
    """index_add(x, dim, idx, src, alpha): 1 add per src element (+1 multiply each when
    ``alpha != 1``). In place it reads idx, src and the updated elements and writes those."""
    src = call.args.get("source")
    n = src.numel if isinstance(src, TensorMeta) else 0
    flops = n * (2 if call.args.get("alpha") not in (None, 1) else 1)
    if not in_place(call):
        return Work(flops=flops)
    upd = elem_bytes(n, call.out)
    w = reads(other_tensors(call, "self"), written=upd, extra=upd)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=upd,
                weight_bytes=w.weight_bytes)


@register_op(
    "index_copy",
    family="movement",
    aten=["index_copy", "index_copy_", "index_fill", "index_fill_", "masked_scatter",
          "masked_scatter_"],
)
def index_copy(call: OpCall) -> Work:
    """index_copy / index_fill / masked_scatter: 0 FLOPs. In place, index_copy_ reads idx and
    src and writes src-many elements; index_fill_ reads idx and writes the selected slices;
    the others read every input and write the output."""
    if not in_place(call) or call.op.startswith("masked"):
        return Work()
    x = self_tensor(call)
    src = call.args.get("source")
    if isinstance(src, TensorMeta):
        n = src.numel
    else:
        idx = call.args.get("index")
        dim = int(call.arg("dim", 0))
        size = x.shape[dim % x.ndim] if x.ndim else 1
        n = (idx.numel if isinstance(idx, TensorMeta) else 1) * (x.numel // size if size else 0)
    upd = elem_bytes(n, x)
    return reads(other_tensors(call, "self"), written=upd)


@register_op(
    "slice_scatter",
    family="movement",
    aten=["slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"],
)
def slice_scatter(call: OpCall) -> Work:
    """slice/select/diagonal/as_strided_scatter (functional x[s] = src): 0 FLOPs; reads x and
    src, writes the output."""
    return Work()
