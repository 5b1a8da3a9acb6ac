"""Data movement: concatenation, indexing, scatter, padding, copies, fills and random tensors.

These ops move bytes but do no arithmetic: 0 MACs, 0 FLOPs, except where stated (scatter_add,
index_add and accumulating index_put add; linspace computes; bernoulli compares).
Bytes follow the builder's default (every input read once, every output written once) except:

- gather-like ops (index, index_select, gather, take) read the index tensors plus only the
  selected source elements (as many as the output holds), not the whole source;
- in-place scatters (scatter_, index_put_, index_add_ ...) read their indices and updates and
  write only the updated elements (accumulating ones also read those elements);
- copy_ reads the source and writes the target (the target's old values are not read);
- fills, factories and random tensors read no tensor data (``*_like`` and ``new_*`` only take
  the shape of ``self``) and write their output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from modelmeter.registry import OpCall, TensorMeta, Work, register_op
from modelmeter.units import DTYPE_BYTES


def _elem_bytes(n: int, like: TensorMeta) -> int:
    """Bytes of ``n`` elements of ``like``'s dtype."""
    return math.ceil(n * DTYPE_BYTES.get(like.dtype, 4))


def _tensors(value: object) -> list[TensorMeta]:
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, TensorMeta)]
    return []


def _written(call: OpCall) -> int:
    return sum(t.nbytes for t in call.outputs)


def _reads(tensors: Iterable[TensorMeta], *, written: int, extra: int = 0,
           extra_weight: int = 0) -> Work:
    """Work reading ``tensors`` whole plus ``extra`` bytes (of which ``extra_weight`` are
    weights) and writing ``written`` bytes, 0 FLOPs."""
    seen: set[tuple[int, tuple[int, ...]]] = set()
    read, weight = extra, extra_weight
    for t in tensors:
        key = (t.sid, t.shape)
        if t.sid and key in seen:
            continue
        seen.add(key)
        read += t.nbytes
        weight += t.nbytes if t.weight else 0
    return Work(bytes_read=read, bytes_written=written, weight_bytes=weight)


def gathered(call: OpCall, source: TensorMeta, index: Iterable[TensorMeta], selected: int,
             flops: int = 0) -> Work:
    """A gather: read the index tensors and ``selected`` elements of ``source``; write the
    outputs. The selected bytes are weight bytes when ``source`` is a weight."""
    sel = _elem_bytes(selected, source)
    w = _reads(index, written=_written(call), extra=sel, extra_weight=sel if source.weight else 0)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=w.bytes_written,
                weight_bytes=w.weight_bytes)


def _self(call: OpCall) -> TensorMeta:
    s = call.args.get("self")
    return s if isinstance(s, TensorMeta) else call.inputs[0]


def _others(call: OpCall, *skip: str) -> list[TensorMeta]:
    """Tensor inputs except the arguments named in ``skip``."""
    drop = [call.args.get(k) for k in skip]
    return [t for t in call.inputs if not any(t is d for d in drop)]


def _inplace(call: OpCall) -> bool:
    return call.op.endswith("_")


@register_op("cat", family="movement", aten=["cat", "stack"], onnx=["Concat"])
def cat(call: OpCall) -> Work:
    """cat / stack: 0 FLOPs; reads every input, writes the output."""
    return Work()


@register_op(
    "index", family="movement", aten=["index", "_unsafe_index"], onnx=["GatherND", "Slice"]
)
def index(call: OpCall) -> Work:
    """x[idx, ...] (advanced indexing): 0 FLOPs; reads the index tensors and the selected
    elements (output-sized) of x, writes the output."""
    src = _self(call)
    return gathered(call, src, _others(call, "self"), call.out.numel)


@register_op("masked_index", family="movement", aten=["_unsafe_masked_index"])
def masked_index(call: OpCall) -> Work:
    """where(mask, x[idx], fill): 1 select per output element; reads mask, indices and the
    selected elements of x (output-sized)."""
    src = _self(call)
    return gathered(call, src, _others(call, "self"), call.out.numel, flops=call.out.numel)


@register_op("index_select", family="movement", aten=["index_select"], onnx=["Gather"])
def index_select(call: OpCall) -> Work:
    """index_select(x, dim, idx): 0 FLOPs; reads idx and the selected slices of x
    (output-sized), writes the output."""
    src = _self(call)
    return gathered(call, src, _others(call, "self"), call.out.numel)


@register_op(
    "gather", family="movement", aten=["gather", "take", "take_along_dim"], onnx=["GatherElements"]
)
def gather(call: OpCall) -> Work:
    """gather(x, dim, idx) / take: 0 FLOPs; reads idx and one element of x per output."""
    src = _self(call)
    return gathered(call, src, _others(call, "self"), call.out.numel)


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
    if not _inplace(call):
        return Work(flops=flops)
    src = call.args.get("src")
    upd = _elem_bytes(updates, call.out)
    extra = (upd if isinstance(src, TensorMeta) else 0) + (upd if flops else 0)
    index_t = _tensors(idx)
    w = _reads(index_t, written=upd, extra=extra)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=upd,
                weight_bytes=w.weight_bytes)


def _put_count(call: OpCall) -> int:
    """Elements updated by index_put: the values' count when not broadcast from a scalar,
    else (broadcast index count) x (size of the dims the indices leave whole); a boolean
    mask counts all its elements (an upper bound: the true count depends on the data)."""
    values = call.args.get("values")
    if isinstance(values, TensorMeta) and values.numel > 1:
        return values.numel
    x = _self(call)
    indices = call.args.get("indices") or ()
    index_count = 1
    shapes = []
    for t in _tensors(indices):  # None entries keep a whole dimension (counted below)
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
    if not _inplace(call):
        return Work(flops=flops)
    upd = _elem_bytes(updates, call.out)
    w = _reads(_others(call, "self"), written=upd, extra=upd if accumulate else 0)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=upd,
                weight_bytes=w.weight_bytes)


@register_op("index_add", family="movement", aten=["index_add", "index_add_"])
def index_add(call: OpCall) -> Work:
    """index_add(x, dim, idx, src, alpha): 1 add per src element (+1 multiply each when
    ``alpha != 1``). In place it reads idx, src and the updated elements and writes those."""
    src = call.args.get("source")
    n = src.numel if isinstance(src, TensorMeta) else 0
    flops = n * (2 if call.args.get("alpha") not in (None, 1) else 1)
    if not _inplace(call):
        return Work(flops=flops)
    upd = _elem_bytes(n, call.out)
    w = _reads(_others(call, "self"), written=upd, extra=upd)
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
    if not _inplace(call) or call.op.startswith("masked"):
        return Work()
    x = _self(call)
    src = call.args.get("source")
    if isinstance(src, TensorMeta):
        n = src.numel
    else:
        idx = call.args.get("index")
        dim = int(call.arg("dim", 0))
        size = x.shape[dim % x.ndim] if x.ndim else 1
        n = (idx.numel if isinstance(idx, TensorMeta) else 1) * (x.numel // size if size else 0)
    upd = _elem_bytes(n, x)
    return _reads(_others(call, "self"), written=upd)


@register_op(
    "slice_scatter",
    family="movement",
    aten=["slice_scatter", "select_scatter", "diagonal_scatter", "as_strided_scatter"],
)
def slice_scatter(call: OpCall) -> Work:
    """slice/select/diagonal/as_strided_scatter (functional x[s] = src): 0 FLOPs; reads x and
    src, writes the output."""
    return Work()


@register_op(
    "pad",
    family="movement",
    aten=["constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
          "replication_pad1d", "replication_pad2d", "replication_pad3d", "_pad_circular"],
    onnx=["Pad"],
)
def pad(call: OpCall) -> Work:
    """Constant, reflection, replication and circular padding: 0 FLOPs; reads the input,
    writes the padded output."""
    return Work()


@register_op(
    "pad_backward",
    family="movement",
    aten=["reflection_pad1d_backward", "reflection_pad2d_backward", "reflection_pad3d_backward",
          "replication_pad1d_backward", "replication_pad2d_backward",
          "replication_pad3d_backward"],
)
def pad_backward(call: OpCall) -> Work:
    """Gradient of reflection/replication padding: every grad_output element is added into
    the input element it copied (the kernel zeroes the input gradient and accumulates): 1 add
    per grad_output element. Reads grad_output (``self`` only gives the shape), writes the
    input gradient."""
    grad = call.args.get("grad_output")
    grad = grad if isinstance(grad, TensorMeta) else call.inputs[0]
    return Work(flops=grad.numel, bytes_read=grad.nbytes, bytes_written=_written(call),
                weight_bytes=grad.nbytes if grad.weight else 0)


@register_op(
    "copy", family="movement", aten=["copy_", "copy", "_copy_from", "_copy_from_and_resize"]
)
def copy(call: OpCall) -> Work:
    """copy_(dst, src): 0 FLOPs; reads src (once, even when broadcast), writes dst. A dtype
    or device conversion moves the bytes of each side's dtype."""
    src = call.args.get("src")
    if not isinstance(src, TensorMeta):  # _copy_from(self, dst): self is the source
        src = _self(call)
    return _reads([src], written=call.out.nbytes)


@register_op(
    "clone",
    family="movement",
    aten=["clone", "_to_copy", "contiguous", "convert_element_type", "lift_fresh_copy",
          "alias_copy", "view_copy", "_reshape_copy", "detach_copy", "permute_copy",
          "expand_copy", "transpose_copy", "t_copy", "unsqueeze_copy", "squeeze_copy",
          "slice_copy", "select_copy", "as_strided_copy", "diagonal_copy", "split_copy",
          "split_with_sizes_copy", "unbind_copy"],
    onnx=["Cast", "CastLike", "Expand"],
)
def clone(call: OpCall) -> Work:
    """clone, _to_copy (dtype/device casts), contiguous and the *_copy forms of views: 0 FLOPs;
    read the input in its dtype, write the output in its dtype (an expand_copy writes the
    expanded size)."""
    return Work()


@register_op(
    "fill",
    family="movement",
    aten=["fill", "fill_", "zero", "zero_", "zeros", "ones", "full", "zeros_like", "ones_like",
          "full_like", "new_zeros", "new_ones", "new_full", "arange", "iota", "eye"],
    onnx=["ConstantOfShape", "Range"],
)
def fill(call: OpCall) -> Work:
    """Fills and factories (fill_, zero_, zeros, ones, full, *_like, new_*, arange, eye):
    0 FLOPs; write the output; read no tensor data (``self`` only gives the shape), except a
    fill value given as a tensor."""
    return _reads(_others(call, "self"), written=_written(call))


@register_op("linspace", family="movement", aten=["linspace", "logspace"])
def linspace(call: OpCall) -> Work:
    """linspace: start + i*step = 2 FLOPs per output element; logspace adds base**that: 3.
    Reads nothing, writes the output."""
    w = _reads(_others(call), written=_written(call))
    k = 3 if call.op == "logspace" else 2
    return Work(flops=k * call.out.numel, bytes_read=w.bytes_read,
                bytes_written=w.bytes_written, weight_bytes=w.weight_bytes)


@register_op(
    "random",
    family="movement",
    aten=["rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "randperm",
          "normal", "normal_", "uniform_", "exponential_", "random_", "geometric_", "cauchy_",
          "log_normal_"],
    onnx=["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"],
)
def random(call: OpCall) -> Work:
    """Random tensors: 0 FLOPs (drawing random numbers is not counted as arithmetic); write
    the output, read no tensor data except tensor parameters (normal's mean/std tensors)."""
    return _reads(_others(call, "self"), written=_written(call))


@register_op("bernoulli", family="movement", aten=["bernoulli", "bernoulli_"], onnx=["Bernoulli"])
def bernoulli(call: OpCall) -> Work:
    """bernoulli (dropout masks): 1 compare per output element (a uniform draw < p); writes
    the output; reads p when it is a tensor (``bernoulli(probs)`` reads probs; a float p
    reads nothing)."""
    self_is_probs = call.op == "bernoulli" and call.args.get("p") is None
    w = _reads(call.inputs if self_is_probs else _others(call, "self"), written=_written(call))
    return Work(flops=call.out.numel, bytes_read=w.bytes_read, bytes_written=w.bytes_written,
                weight_bytes=w.weight_bytes)


@register_op(
    "rearrange",
    family="movement",
    aten=["repeat", "tile", "roll", "flip", "rot90", "tril", "tril_", "triu", "triu_",
          "repeat_interleave", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
          "native_channel_shuffle", "im2col", "masked_select"],
    onnx=["Tile", "DepthToSpace", "SpaceToDepth", "Trilu", "Transpose", "Split",
          "SplitToSequence", "ReverseSequence"],
)
def rearrange(call: OpCall) -> Work:
    """repeat/tile, roll, flip, rot90, tril/triu, repeat_interleave, pixel (un)shuffle,
    channel shuffle, im2col (unfold), masked_select: 0 FLOPs; read the inputs, write the
    output."""
    return Work()


@register_op(
    "nonzero", family="movement", aten=["nonzero", "nonzero_static", "argwhere"], onnx=["NonZero"]
)
def nonzero(call: OpCall) -> Work:
    """nonzero: 1 compare with zero per input element; reads the input, writes the indices."""
    return Work(flops=call.inputs[0].numel)


@register_op("col2im", family="movement", aten=["col2im"], onnx=["Col2Im"])
def col2im(call: OpCall) -> Work:
    """col2im (fold): sums overlapping patches. Along each spatial dimension, block i and
    kernel offset j land on ``i*stride - pad + j*dilation``; the column elements landing
    inside the image are summed into their output position, those landing in the padding
    are dropped. An output that receives c values costs c - 1 adds, so
    FLOPs = (in-bound column elements) - (output positions receiving at least one),
    both products over the dimensions, times N*C. Without padding and with every output
    covered this is in.numel - out.numel. (ONNX Col2Im, whose block shape is an input
    tensor: in.numel - out.numel.)"""
    kernel = call.args.get("kernel_size")
    size = call.args.get("output_size")
    out = call.out
    if not isinstance(kernel, (list, tuple)) or not isinstance(size, (list, tuple)):
        return Work(flops=max(0, call.inputs[0].numel - out.numel))
    k = len(kernel)
    image = math.prod(size)
    planes = out.numel // image if image else 0
    inbound = hits = planes
    for d in range(k):
        dil = _at(call.args.get("dilation"), d, 1)
        pad = _at(call.args.get("padding"), d, 0)
        stride = _at(call.args.get("stride"), d, 1)
        blocks = (size[d] + 2 * pad - dil * (kernel[d] - 1) - 1) // stride + 1
        pos = [i * stride - pad + j * dil for i in range(max(0, blocks))
               for j in range(kernel[d])]
        inside = [q for q in pos if 0 <= q < size[d]]
        inbound *= len(inside)
        hits *= len(set(inside))
    return Work(flops=max(0, inbound - hits))


def _at(value: object, i: int, default: int) -> int:
    """Element i of an int-or-list argument (a one-element list applies to every dim)."""
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)) and value:
        return int(value[i] if i < len(value) else value[-1])
    return default


@register_op("equal", family="movement", aten=["equal"])
def equal(call: OpCall) -> Work:
    """equal(a, b) -> Python bool: n compares and n - 1 logical ands (all) over the n
    elements = 2n - 1 (0 when the shapes differ); reads both tensors, writes nothing."""
    a, b = call.inputs[0], call.inputs[1]
    n = a.numel if a.shape == b.shape else 0
    return Work(flops=max(0, 2 * n - 1))
