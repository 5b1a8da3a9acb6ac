"""Pooling: max, average, adaptive, fractional, global pooling and max-unpooling.

In PyTorch 2.14 ``F.max_pool1d/2d`` reach the tracer as ``max_pool2d_with_indices`` (1-d on an
unsqueezed view), ``F.avg_pool1d`` as ``avg_pool2d``, ``F.adaptive_avg_pool1d/2d`` as
``_adaptive_avg_pool2d`` (or as ``mean`` when the output is 1x1), ``F.adaptive_max_pool1d`` as
``adaptive_max_pool2d``; ``F.lp_pool*`` decomposes into pow, avg_pool, sign, abs, relu and mul.

Counting, per output element, over the input elements its window really covers (padding and
the part of a ``ceil_mode`` window beyond the input are not read):

- max: K-1 compares for a window of K elements;
- average: K-1 adds + 1 divide = K (the divisor, whether it counts padding
  (``count_include_pad``) or is overridden, changes the value, not the work).

Windows are separable, so the total number of covered elements is N*C times the product over
the pooled dimensions of (sum over output positions of the covered length in that dimension).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelmeter.registry import OpCall, TensorMeta, Work, register_op, unfused_bytes


def _per_dim(value: object, k: int, default: int) -> list[int]:
    """An int or a list of 1 or k ints as k ints (PyTorch's int[k] broadcasting)."""
    if value is None:
        return [default] * k
    if isinstance(value, int):
        return [value] * k
    items = [int(v) for v in value]  # type: ignore[union-attr]
    if not items:
        return [default] * k
    if len(items) == 1:
        return items * k
    return items[-k:] if len(items) >= k else [items[0]] * k


def covered_lengths(
    size: int, out: int, kernel: int, stride: int, pad: int, dilation: int = 1
) -> list[int]:
    """How many input elements each output window covers along one dimension: window i reads
    positions ``i*stride - pad + j*dilation`` (0 <= j < kernel) that lie in [0, size)."""
    lengths = []
    for i in range(out):
        start = i * stride - pad
        lengths.append(sum(1 for j in range(kernel) if 0 <= start + j * dilation < size))
    return lengths


def _covered(start: int, size: int, kernel: int, dilation: int) -> int:
    """Taps j in [0, kernel) with 0 <= start + j*dilation < size, counted in O(1)."""
    first = 0 if start >= 0 else (-start + dilation - 1) // dilation
    if start > size - 1:
        return 0
    last = min(kernel - 1, (size - 1 - start) // dilation)
    return max(0, last - first + 1)


def covered_total(
    size: int, out: int, kernel: int, stride: int, pad: int, dilation: int = 1
) -> int:
    """``sum(covered_lengths(...))`` without visiting every window: windows lying wholly
    inside the input cover ``kernel`` elements each; only the border windows are counted one
    by one (so a huge input costs as much as a small one)."""
    span = (kernel - 1) * dilation
    lo = min(out, -(-pad // stride))  # first window starting at or after 0
    hi = min(out - 1, (size - 1 + pad - span) // stride)  # last window ending inside
    if hi < lo:
        lo, hi = out, out - 1  # no interior window
    total = (hi - lo + 1) * kernel if hi >= lo else 0
    for i in (*range(0, lo), *range(max(hi + 1, lo), out)):
        total += _covered(i * stride - pad, size, kernel, dilation)
    return total


def adaptive_lengths(size: int, out: int) -> list[int]:
    """Window lengths of adaptive pooling along one dimension: window i spans
    [floor(i*size/out), ceil((i+1)*size/out))."""
    return [-(-(i + 1) * size // out) - (i * size // out) for i in range(out)]


def _pair(call: OpCall) -> tuple[TensorMeta, TensorMeta]:
    """(pooled input, pooled output): the call's input and output, or, for a backward op,
    ``self`` (the forward's input) and ``grad_output`` (shaped like the forward's output)."""
    grad = call.args.get("grad_output")
    x = call.args.get("self")
    if isinstance(grad, TensorMeta) and isinstance(x, TensorMeta):
        return x, grad
    return call.inputs[0], call.out


def _spatial(call: OpCall, k: int) -> tuple[Sequence[int], Sequence[int], int]:
    """Input spatial sizes, output spatial sizes and the number of (batch x channel) planes."""
    x, out = _pair(call)
    in_sp, out_sp = x.shape[-k:], out.shape[-k:]
    planes = out.numel // math.prod(out_sp) if math.prod(out_sp) else 0
    return in_sp, out_sp, planes


def _ndim(call: OpCall) -> int:
    for ch in ("1d", "2d", "3d"):
        if ch in call.op:
            return int(ch[0])
    kernel = call.arg("kernel_size", call.arg("kernel_shape"))
    if kernel is not None and not isinstance(kernel, int):
        return len(kernel)
    return max(1, _pair(call)[0].ndim - 2)


def _window_totals(call: OpCall, dilated: bool) -> tuple[int, int]:
    """(covered input elements summed over all outputs, number of outputs)."""
    k = _ndim(call)
    in_sp, out_sp, planes = _spatial(call, k)
    kernel = _per_dim(call.arg("kernel_size", call.arg("kernel_shape")), k, 1)
    stride = _per_dim(call.arg("stride", call.arg("strides")), k, 0)
    stride = [s if s else kk for s, kk in zip(stride, kernel)]
    pads = call.arg("padding", call.arg("pads"))
    if isinstance(pads, (list, tuple)) and len(pads) == 2 * k:  # ONNX begin..., end...
        pads = list(pads[:k])
    padding = _per_dim(pads, k, 0)
    dilation = _per_dim(call.arg("dilation", call.arg("dilations")) if dilated else None, k, 1)
    covered = planes
    for d in range(k):
        covered *= covered_total(
            in_sp[d], out_sp[d], kernel[d], stride[d], padding[d], dilation[d]
        )
    return covered, planes * math.prod(out_sp)


@register_op(
    "max_pool",
    family="pool",
    aten=[
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "max_pool3d_with_indices",
        "mkldnn_max_pool2d",
        "mkldnn_max_pool3d",
        "quantized_max_pool1d",
        "quantized_max_pool2d",
        "quantized_max_pool3d",
    ],
    onnx=["MaxPool"],
)
def max_pool(call: OpCall) -> Work:
    """Max pooling: K-1 compares per output, K = input elements its (dilated) window covers
    (K = prod(kernel) away from the borders). FLOPs = sum over outputs of (K - 1).
    The ``_with_indices`` variants also write the int64 argmax indices (counted in bytes)."""
    covered, outputs = _window_totals(call, dilated=True)
    return Work(flops=covered - outputs)


@register_op(
    "avg_pool", family="pool", aten=["avg_pool1d", "avg_pool2d", "avg_pool3d"], onnx=["AveragePool"]
)
def avg_pool(call: OpCall) -> Work:
    """Average pooling: K-1 adds + 1 divide = K per output, K = input elements its window
    covers (K = prod(kernel) away from the borders; padding is never added). FLOPs = sum over
    outputs of K. ``count_include_pad``/``divisor_override`` change only the divisor;
    ``ceil_mode`` only through the output shape and the clipped last window."""
    covered, _ = _window_totals(call, dilated=False)
    return Work(flops=covered)


def _adaptive_totals(call: OpCall) -> tuple[int, int]:
    k = _ndim(call)
    in_sp, out_sp, planes = _spatial(call, k)
    covered = planes
    for d in range(k):
        covered *= sum(adaptive_lengths(in_sp[d], out_sp[d]))
    return covered, planes * math.prod(out_sp)


@register_op(
    "adaptive_avg_pool",
    family="pool",
    aten=[
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "_adaptive_avg_pool2d",
        "_adaptive_avg_pool3d",
        "mkldnn_adaptive_avg_pool2d",
    ],
)
def adaptive_avg_pool(call: OpCall) -> Work:
    """Adaptive average pooling to size Out from In along each dimension: window i spans
    [floor(i*In/Out), ceil((i+1)*In/Out)), so windows differ in size and may overlap. Each
    output costs its window size K (K-1 adds + 1 divide). FLOPs = N*C*prod over dims of
    (sum of window lengths); for In divisible by Out that is simply the input size."""
    covered, _ = _adaptive_totals(call)
    return Work(flops=covered)


@register_op(
    "adaptive_max_pool",
    family="pool",
    aten=["adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"],
)
def adaptive_max_pool(call: OpCall) -> Work:
    """Adaptive max pooling: windows as in adaptive average pooling, K-1 compares per output
    of window size K. FLOPs = covered elements - outputs. Indices are written too."""
    covered, outputs = _adaptive_totals(call)
    return Work(flops=covered - outputs)


@register_op(
    "fractional_max_pool", family="pool", aten=["fractional_max_pool2d", "fractional_max_pool3d"]
)
def fractional_max_pool(call: OpCall) -> Work:
    """Fractional max pooling: every window is a full kernel placed inside the input at a
    pseudo-random offset, so prod(kernel) - 1 compares per output. (Drawing the random
    samples is a separate op.)"""
    k = _ndim(call)
    kernel = _per_dim(call.arg("kernel_size"), k, 1)
    return Work(flops=call.out.numel * (math.prod(kernel) - 1))


@register_op("global_pool", family="pool", onnx=["GlobalAveragePool", "GlobalMaxPool"])
def global_pool(call: OpCall) -> Work:
    """Global pooling over all S spatial elements: average S per output (S-1 adds + 1
    divide), max S-1 compares per output. (PyTorch runs ``mean`` / ``amax`` instead.)"""
    x, out = call.inputs[0], call.out
    s = x.numel // out.numel if out.numel else 0
    per = s if "Average" in call.op else s - 1
    return Work(flops=out.numel * per)


@register_op("max_unpool", family="pool", aten=["max_unpool2d", "max_unpool3d"], onnx=["MaxUnpool"])
def max_unpool(call: OpCall) -> Work:
    """Max-unpooling zero-fills the output and scatters each input to its index: no
    arithmetic, 0 FLOPs; bytes: the input and indices read, the whole output written."""
    return Work(flops=0)


# ---- backward ------------------------------------------------------------------------------
#
# Pooling gradients zero the input gradient and add every contribution of every output
# gradient into it: each contribution is counted as one add (as for scatter_add, into which
# ``max_pool2d_with_indices_backward`` decomposes), also where it lands on a zero.


@register_op(
    "avg_pool_backward", family="pool", aten=["avg_pool2d_backward", "avg_pool3d_backward"]
)
def avg_pool_backward(call: OpCall) -> Work:
    """Gradient of average pooling: each output gradient is divided by its window's divisor
    (1) and added to the K input elements its window covers (K adds, K as in the forward).
    FLOPs = grad_output.numel + sum over outputs of K (the forward's count + one per
    output). Reads grad_output (``self`` only gives the shape), writes the input gradient."""
    covered, outputs = _window_totals(call, dilated=False)
    return _without_self(call, covered + outputs)


@register_op(
    "adaptive_avg_pool_backward",
    family="pool",
    aten=["_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward"],
)
def adaptive_avg_pool_backward(call: OpCall) -> Work:
    """Gradient of adaptive average pooling: each output gradient divided by its window
    size (1) and added to its K window elements (K). FLOPs = outputs + covered elements."""
    covered, outputs = _adaptive_totals(call)
    return _without_self(call, covered + outputs)


@register_op(
    "max_pool_backward",
    family="pool",
    aten=[
        "max_pool3d_with_indices_backward",
        "adaptive_max_pool2d_backward",
        "adaptive_max_pool3d_backward",
        "fractional_max_pool2d_backward",
        "fractional_max_pool3d_backward",
    ],
)
def max_pool_backward(call: OpCall) -> Work:
    """Gradient of max pooling (3-d, adaptive, fractional; the 2-d op decomposes into
    zeros + scatter_add, counted alike): each output gradient is added into the input element
    its index points to: 1 add per grad_output element. Reads grad_output and the indices
    (``self`` only gives the shape), writes the input gradient."""
    return _without_self(call, _pair(call)[1].numel)


def _without_self(call: OpCall, flops: int) -> Work:
    """Work of a pooling gradient that reads every tensor but ``self`` (the forward input,
    passed for its shape only) and writes its output."""
    x = call.args.get("self")
    read, written, weight = unfused_bytes(
        [t for t in call.inputs if t is not x], call.outputs
    )
    return Work(flops=flops, bytes_read=read, bytes_written=written, weight_bytes=weight)
