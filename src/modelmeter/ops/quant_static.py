"""Elementwise and joining ops of PyTorch's static quantisation (``torch.ao.quantization``
prepare/convert: ``FloatFunctional`` becomes ``QFunctional``, whose add, mul and cat are
``quantized.*`` ops; quantised activations with their own output scale).

Each 8-bit tensor carries a scale and a zero point; an op whose output has other quantisation
parameters than its inputs works as if it dequantised each operand, computed in float and
quantised the result. By the conventions of ``ops.quant``: dequantise ``(q - zero_point) *
scale`` = 2 per element (as DequantizeLinear with a zero point), quantise ``saturate(round(x /
scale) + zero_point)`` = 5 per element (as QuantizeLinear), the float op as its float formula
(``ops.activation``; an add or multiply is 1). A fused ReLU only moves the clamp's lower bound:
no extra work. Ops that keep their input's quantisation parameters (relu6, threshold, clamp)
work on the integers directly: their compare-and-selects only. Counted per OUTPUT element.
"""

from __future__ import annotations

from modelmeter.ops.norm import batch_norm_flops
from modelmeter.ops.quant import QUANTIZE_FLOPS
from modelmeter.registry import OpCall, TensorMeta, Work, per_output, register_op

DEQUANTIZE_FLOPS = 2  # (q - zero_point) * scale


def _variants(*names: str) -> list[str]:
    return [f"quantized.{n}{tail}" for n in names for tail in ("", "_out")]


@register_op(
    "quantized_binary",
    family="quant",
    aten=_variants("add", "add_relu", "mul", "mul_relu"),
)
def quantized_binary(call: OpCall) -> Work:
    """qa + qb or qa * qb (QFunctional add, add_relu, mul, mul_relu), requantised to the output's
    scale: dequantise both operands 2 + 2, the op 1, quantise 5 = 10 per output element."""
    return per_output(call, 2 * DEQUANTIZE_FLOPS + 1 + QUANTIZE_FLOPS)


@register_op(
    "quantized_scalar",
    family="quant",
    aten=_variants("add_scalar", "add_scalar_relu", "mul_scalar", "mul_scalar_relu"),
)
def quantized_scalar(call: OpCall) -> Work:
    """qa + b or qa * b with a float scalar b (QFunctional add_scalar, mul_scalar): dequantise
    2, the op 1, quantise 5 = 8 per output element."""
    return per_output(call, DEQUANTIZE_FLOPS + 1 + QUANTIZE_FLOPS)


@register_op("quantized_cat", family="quant", aten=_variants("cat", "cat_relu"))
def quantized_cat(call: OpCall) -> Work:
    """QFunctional cat: the inputs joined along ``dim`` at the output's scale and zero point,
    each element requantised: dequantise 2 + quantise 5 = 7 per output element. (Inputs that
    already share the output's parameters are only copied; a trace does not see the
    parameters, so every element is charged as requantised.)"""
    return per_output(call, DEQUANTIZE_FLOPS + QUANTIZE_FLOPS)


# the float formula's FLOPs per element (ops.activation) of the quantised activations that
# requantise to their own output scale
_FLOAT_ACTIVATION = {
    "quantized.hardswish": 5,  # + 3, 2 clamps, * x, / 6
    "quantized.sigmoid": 4,  # negate, exp, + 1, divide
    "quantized.leaky_relu": 2,  # multiply + select
    "quantized.elu": 4,  # exp, - 1, * alpha, select
    "quantized.celu": 5,  # elu + x / alpha
}


@register_op("quantized_activation", family="quant", aten=list(_FLOAT_ACTIVATION))
def quantized_activation(call: OpCall) -> Work:
    """A quantised activation with its own output scale (hardswish, sigmoid, leaky_relu, elu,
    celu): dequantise 2 + the float formula + quantise 5 per element: hardswish 2 + 5 + 5 = 12,
    sigmoid 11, leaky_relu 9, elu 11 (+1 each for ``scale`` or ``input_scale`` != 1, as the
    float elu), celu 12."""
    float_op = _FLOAT_ACTIVATION[call.op]
    if call.op == "quantized.elu":
        float_op += sum(call.args.get(k) not in (None, 1) for k in ("scale", "input_scale"))
    return per_output(call, DEQUANTIZE_FLOPS + float_op + QUANTIZE_FLOPS)


@register_op(
    "quantized_clamp",
    family="quant",
    aten=["quantized.relu6", "quantized.threshold", "quantized.clamp"],
)
def quantized_clamp(call: OpCall) -> Work:
    """Quantised relu6, threshold and clamp keep the input's scale and zero point and work on
    the integers: relu6 and clamp with both bounds 2 compare-and-selects per element (a clamp
    with one bound 1), threshold 1."""
    if call.op == "quantized.threshold":
        return per_output(call, 1)
    if call.op == "quantized.clamp":
        return per_output(call, sum(call.args.get(k) is not None for k in ("min", "max")))
    return per_output(call, 2)


@register_op(
    "quantized_batch_norm",
    family="quant",
    aten=[f"quantized.batch_norm{d}{r}" for d in ("", "1d", "2d", "3d") for r in ("", "_relu")],
)
def quantized_batch_norm(call: OpCall) -> Work:
    """A quantised BatchNorm (running statistics) not fused into a convolution: dequantise 2,
    the float eval batch norm (``ops.norm.batch_norm``: ``x * scale + shift`` 2 per element,
    the per-channel scale and shift 4 + [gamma] per channel), quantise 5: FLOPs = 9*numel +
    C*(4 + [gamma])."""
    x = call.inputs[0]
    channels = x.shape[1] if x.ndim > 1 else 1
    weight = isinstance(call.args.get("weight"), TensorMeta)
    bn = batch_norm_flops(x.numel, channels, False, weight, True, True)
    return Work(flops=(DEQUANTIZE_FLOPS + QUANTIZE_FLOPS) * x.numel + bn)
