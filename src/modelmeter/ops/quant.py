"""Quantised operators of ONNX: quantise / dequantise, integer and QLinear matmul and conv.

For integer ops the ``flops`` field counts integer operations the same way floating ones are
counted (a multiply, an add, a compare, a round is 1). Bytes follow the tensors' real dtypes
(int8/uint8 1 byte, int32 accumulators and biases 4), so a quantised model reads a quarter of
the weight bytes of its float32 original.

Conventions shared by the formulas below:

- quantise ``saturate(round(x / scale) + zero_point)``: divide, round, add, and a clamp to
  the integer range (2 compare-and-selects) = 5 per element;
- requantise an int32 accumulator to 8 bits: multiply by the combined scale
  ``a_scale*b_scale/y_scale`` (a per-tensor or per-channel constant, not counted), round, add
  the zero point, clamp (2) = 5 per output;
- zero points: ``(a - a_zero_point)`` costs 1 subtraction per element of an *activation*
  operand when a zero point is given; a weight's zero point is applied once when the runtime
  loads the model (it is constant), so it is not counted per inference.
"""

from __future__ import annotations

import math

from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, per_output, register_op

QUANTIZE_FLOPS = 5
REQUANTIZE_FLOPS = 5


def _t(call: OpCall, name: str) -> TensorMeta | None:
    v = call.args.get(name)
    return v if isinstance(v, TensorMeta) else None


def _zero_point_work(call: OpCall, *pairs: tuple[str, str]) -> int:
    """Subtractions of the zero points given for activation (non-weight) operands."""
    total = 0
    for operand, zero_point in pairs:
        t = _t(call, operand)
        if t is not None and not t.weight and _t(call, zero_point) is not None:
            total += t.numel
    return total


@register_op("quantize_linear", family="quant", onnx=["QuantizeLinear"])
def quantize_linear(call: OpCall) -> Work:
    """y = saturate(round(x / scale) + zero_point): divide, round, add, clamp (2) = 5 per
    element (the zero point is added even when absent: it is 0)."""
    return per_output(call, QUANTIZE_FLOPS)


@register_op("dequantize_linear", family="quant", onnx=["DequantizeLinear"])
def dequantize_linear(call: OpCall) -> Work:
    """y = (x - zero_point) * scale: 2 per element with a zero point, 1 without."""
    return per_output(call, 2 if _t(call, "x_zero_point") is not None else 1)


@register_op("dynamic_quantize_linear", family="quant", onnx=["DynamicQuantizeLinear"])
def dynamic_quantize_linear(call: OpCall) -> Work:
    """uint8 quantisation with a range computed from the data, over n elements:
    min and max of x, 2(n-1) compares; the range widened to include 0, 2 compares;
    scale = (max - min) / 255, 2; zero point saturate(round(-min / scale)), negate, divide,
    round and clamp (2) = 5; then quantise every element, 5n.
    FLOPs = 2(n-1) + 9 + 5n = 7n + 7."""
    n = call.inputs[0].numel
    return Work(flops=2 * (n - 1) + 9 + QUANTIZE_FLOPS * n if n else 0)


def _matmul_macs(a: TensorMeta, out: TensorMeta) -> int:
    """Every output of a (broadcast) matrix product is a dot product of length k = a's last
    dimension."""
    return out.numel * (a.shape[-1] if a.shape else 1)


@register_op("matmul_integer", family="quant", onnx=["MatMulInteger"])
def matmul_integer(call: OpCall) -> Work:
    """int32 Y = (A - a_zero_point) @ (B - b_zero_point), NumPy batch broadcasting:
    MACs = outputs * k; integer ops as a matmul's FLOPs (2k-1 per output, exact), plus the
    activation zero-point subtractions (see the module docstring)."""
    a = _t(call, "A") or call.inputs[0]
    w = mac_work(call, _matmul_macs(a, call.out), call.out.numel, bias=False)
    zp = _zero_point_work(call, ("A", "a_zero_point"), ("B", "b_zero_point"))
    return Work(macs=w.macs, flops=w.flops + zp)


def _conv_macs(w: TensorMeta, out: TensorMeta) -> int:
    """As the convolution formula: out.numel * (Ci/g) * prod(kernel)."""
    return out.numel * math.prod(w.shape[1:])


@register_op("conv_integer", family="quant", onnx=["ConvInteger"])
def conv_integer(call: OpCall) -> Work:
    """int32 convolution of (x - x_zero_point) with (w - w_zero_point): MACs as a
    convolution, out.numel * (Ci/g) * prod(kernel); integer ops 2*MACs - outputs (no bias),
    plus the activation zero-point subtractions."""
    w = _t(call, "w") or call.inputs[1]
    work = mac_work(call, _conv_macs(w, call.out), call.out.numel, bias=False)
    zp = _zero_point_work(call, ("x", "x_zero_point"), ("w", "w_zero_point"))
    return Work(macs=work.macs, flops=work.flops + zp)


@register_op("qlinear_matmul", family="quant", onnx=["QLinearMatMul"])
def qlinear_matmul(call: OpCall) -> Work:
    """8-bit matmul with requantised 8-bit output: MACs = outputs * k; integer ops
    (2k-1) per output (exact) + zero-point subtractions of activation operands + requantising
    5 per output."""
    a = _t(call, "a") or call.inputs[0]
    w = mac_work(call, _matmul_macs(a, call.out), call.out.numel, bias=False)
    zp = _zero_point_work(call, ("a", "a_zero_point"), ("b", "b_zero_point"))
    return Work(macs=w.macs, flops=w.flops + zp + REQUANTIZE_FLOPS * call.out.numel)


@register_op("qlinear_conv", family="quant", onnx=["QLinearConv"])
def qlinear_conv(call: OpCall) -> Work:
    """8-bit convolution with an optional int32 bias and requantised 8-bit output: MACs as a
    convolution; integer ops 2*MACs - outputs (+ outputs with the bias), + zero-point
    subtractions of the activation + requantising 5 per output."""
    w = _t(call, "w") or call.inputs[3]
    bias = _t(call, "B") is not None
    work = mac_work(call, _conv_macs(w, call.out), call.out.numel, bias=bias)
    zp = _zero_point_work(call, ("x", "x_zero_point"), ("w", "w_zero_point"))
    return Work(macs=work.macs, flops=work.flops + zp + REQUANTIZE_FLOPS * call.out.numel)


@register_op("qgemm", family="quant", onnx=["com.microsoft.QGemm"])
def qgemm(call: OpCall) -> Work:
    """onnxruntime's QGemm: alpha * (A - a_zp) @ (B - b_zp) + C with transA/transB, output
    requantised to 8 bits when y_scale is given (5 per output), else a float scaled by the
    input scales (1 multiply per output). MACs = M*K*N; integer ops 2*MACs - outputs
    (+ outputs with C) + zero-point subtractions of activation operands."""
    a = _t(call, "A") or call.inputs[0]
    k = a.shape[0] if call.arg("transA", 0) else a.shape[-1]
    out = call.out
    bias = _t(call, "C") is not None
    work = mac_work(call, out.numel * k, out.numel, bias=bias)
    zp = _zero_point_work(call, ("A", "a_zero_point"), ("B", "b_zero_point"))
    scale = REQUANTIZE_FLOPS if _t(call, "y_scale") is not None else 1
    return Work(macs=work.macs, flops=work.flops + zp + scale * out.numel)


@register_op("linear_dynamic", family="quant", aten=["quantized.linear_dynamic"])
def linear_dynamic(call: OpCall) -> Work:
    """PyTorch's dynamically quantised Linear (``quantize_dynamic``): x (rows, k) in float,
    weight (n, k) in int8 and a float bias, packed. The activation is quantised on the fly
    (its range: min and max, 2 per element; quantise: 5 per element), multiplied in integers
    (MACs = rows*k*n, with the bias as for ``addmm``) and dequantised (1 multiply per output).
    2mac: 2*MACs."""
    x, weight = call.inputs[0], call.inputs[1]
    n, k = weight.shape
    rows = x.numel // k if k else 0
    bias = len(call.inputs) > 2
    work = mac_work(call, rows * k * n, rows * n, bias)
    if call.convention == "2mac":
        return work
    return Work(macs=work.macs, flops=work.flops + (2 + QUANTIZE_FLOPS) * x.numel + rows * n)


# ---- PyTorch's static quantisation (torch.ao.quantization prepare/convert) -------------------


@register_op(
    "quantize_per_tensor", family="quant", aten=["quantize_per_tensor", "quantize_per_channel"]
)
def quantize_per_tensor(call: OpCall) -> Work:
    """A float tensor quantised to 8 bits (QuantStub): round(x / scale) + zero_point, clamped:
    divide, round, add, clamp (2) = 5 per element, as QuantizeLinear."""
    return per_output(call, QUANTIZE_FLOPS)


@register_op("dequantize", family="quant", aten=["dequantize"])
def dequantize(call: OpCall) -> Work:
    """A quantised tensor back to float (DeQuantStub): (x - zero_point) * scale = 2 per
    element, as DequantizeLinear with a zero point."""
    return per_output(call, 2)


def _static(call: OpCall, macs: int) -> Work:
    """An 8-bit op with an int32 accumulator and a requantised 8-bit output: sums of products
    (2*MACs - outputs, +outputs with the float bias added to the accumulator), the zero point
    of the activation subtracted (1 per input element), requantising 5 per output (a fused
    ReLU only moves the clamp's lower bound: no extra work). 2mac: 2*MACs."""
    bias = len(call.inputs) > 2
    work = mac_work(call, macs, call.out.numel, bias)
    if call.convention == "2mac":
        return work
    x = call.inputs[0].numel
    return Work(macs=work.macs, flops=work.flops + x + REQUANTIZE_FLOPS * call.out.numel)


@register_op("linear_static", family="quant", aten=["quantized.linear", "quantized.linear_relu"])
def linear_static(call: OpCall) -> Work:
    """PyTorch's statically quantised Linear: x (rows, k) quint8, weight (n, k) qint8 and a
    float bias, packed; MACs = rows*k*n (see ``_static`` for the FLOPs)."""
    x, weight = call.inputs[0], call.inputs[1]
    n, k = weight.shape
    rows = x.numel // k if k else 0
    return _static(call, rows * k * n)


@register_op(
    "conv_static",
    family="quant",
    aten=[f"quantized.conv{d}d{r}" for d in (1, 2, 3) for r in ("", "_relu")],
)
def conv_static(call: OpCall) -> Work:
    """PyTorch's statically quantised Conv1d/2d/3d: MACs as a convolution, out.numel *
    (Ci/g) * prod(kernel), from the packed weight (Co, Ci/g, *kernel) (see ``_static``)."""
    return _static(call, _conv_macs(call.inputs[1], call.out))
