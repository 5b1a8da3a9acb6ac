"""Data movement: concatenation, padding, copies, fills and random tensors (indexing,
gathers and scatters: :mod:`modelmeter.ops.indexing`), and the byte rules they share.

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

from modelmeter.registry import OpCall, TensorMeta, Work, register_op, unfused_bytes


def elem_bytes(n: int, like: TensorMeta) -> int:
    """Bytes of ``n`` elements of ``like``'s dtype."""
    return math.ceil(n * like.itemsize)


def tensors_of(value: object) -> list[TensorMeta]:
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, TensorMeta)]
    return []


def written_bytes(call: OpCall) -> int:
    return sum(t.nbytes for t in call.outputs)


def reads(tensors: Iterable[TensorMeta], *, written: int, extra: int = 0,
          extra_weight: int = 0) -> Work:
    """Work reading ``tensors`` whole (each distinct one once) plus ``extra`` bytes (of which
    ``extra_weight`` are weights) and writing ``written`` bytes, 0 FLOPs."""
    read, _, weight = unfused_bytes(tensors, ())
    return Work(bytes_read=read + extra, bytes_written=written, weight_bytes=weight + extra_weight)


def gathered(call: OpCall, source: TensorMeta, index: Iterable[TensorMeta], selected: int,
             flops: int = 0) -> Work:
    """A gather: read the index tensors and ``selected`` elements of ``source``; write the
    outputs. The selected bytes are weight bytes when ``source`` is a weight."""
    sel = elem_bytes(selected, source)
    w = reads(index, written=written_bytes(call), extra=sel, extra_weight=sel if source.weight else 0)
    return Work(flops=flops, bytes_read=w.bytes_read, bytes_written=w.bytes_written,
                weight_bytes=w.weight_bytes)


def self_tensor(call: OpCall) -> TensorMeta:
    s = call.args.get("self")
    return s if isinstance(s, TensorMeta) else call.inputs[0]


def other_tensors(call: OpCall, *skip: str) -> list[TensorMeta]:
    """Tensor inputs except the arguments named in ``skip``."""
    drop = [call.args.get(k) for k in skip]
    return [t for t in call.inputs if not any(t is d for d in drop)]


def in_place(call: OpCall) -> bool:
    return call.op.endswith("_")


@register_op("cat", family="movement", aten=["cat", "stack"], onnx=["Concat"])
def cat(call: OpCall) -> Work:
    """cat / stack: 0 FLOPs; reads every input, writes the output."""
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
    return Work(flops=grad.numel, bytes_read=grad.nbytes, bytes_written=written_bytes(call),
                weight_bytes=grad.nbytes if grad.weight else 0)


@register_op(
    "copy", family="movement", aten=["copy_", "copy", "_copy_from", "_copy_from_and_resize"]
)
def copy(call: OpCall) -> Work:
    """copy_(dst, src): 0 FLOPs; reads src (once, even when broadcast), writes dst. A dtype
    or device conversion moves the bytes of each side's dtype."""
    src = call.args.get("src")
    if not isinstance(src, TensorMeta):  # _copy_from(self, dst): self is the source
        src = self_tensor(call)
    return reads([src], written=call.out.nbytes)


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
    return reads(other_tensors(call, "self"), written=written_bytes(call))


@register_op("linspace", family="movement", aten=["linspace", "logspace"])
def linspace(call: OpCall) -> Work:
    """linspace: start + i*step = 2 FLOPs per output element; logspace adds base**that: 3.
    Reads nothing, writes the output."""
    w = reads(other_tensors(call), written=written_bytes(call))
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
    return reads(other_tensors(call, "self"), written=written_bytes(call))


@register_op("bernoulli", family="movement", aten=["bernoulli", "bernoulli_"], onnx=["Bernoulli"])
def bernoulli(call: OpCall) -> Work:
    """bernoulli (dropout masks): 1 compare per output element (a uniform draw < p); writes
    the output; reads p when it is a tensor (``bernoulli(probs)`` reads probs; a float p
    reads nothing)."""
    self_is_probs = call.op == "bernoulli" and call.args.get("p") is None
    w = reads(call.inputs if self_is_probs else other_tensors(call, "self"), written=written_bytes(call))
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
