"""Activation functions and the softmax family.

Per OUTPUT element unless stated, 0 MACs. A multiply, add, divide, compare-and-select or
special function (exp, log, tanh, erf) is 1 FLOP. In-place variants (``relu_``) cost the same.
"""

from __future__ import annotations

from modelmeter.registry import OpCall, Work, per_output, register_op


def _inplace(*names: str) -> list[str]:
    return [v for n in names for v in (n, n + "_")]


def _row(call: OpCall, *keys: str, default: int = -1) -> tuple[int, int]:
    """(rows, n): the input split into rows of length n along the reduced dimension."""
    x = call.inputs[0]
    if x.ndim == 0:
        return 1, 1
    dim = default
    for k in keys:
        if call.args.get(k) is not None:
            dim = int(call.args[k])
            break
    n = x.shape[dim % x.ndim]
    return (x.numel // n if n else 0), n


@register_op(
    "relu",
    family="activation",
    aten=_inplace("relu", "threshold"),
    onnx=["Relu", "ThresholdedRelu"],
)
def relu(call: OpCall) -> Work:
    """relu = max(x, 0), threshold (x if x > t else v): 1 compare-and-select per element."""
    return per_output(call, 1)


@register_op("hardtanh", family="activation", aten=_inplace("hardtanh", "relu6"))
def hardtanh(call: OpCall) -> Work:
    """hardtanh / relu6 = min(max(x, lo), hi): 2 compare-and-selects per element."""
    return per_output(call, 2)


@register_op(
    "leaky_relu",
    family="activation",
    aten=[*_inplace("leaky_relu", "rrelu", "rrelu_with_noise"), "prelu", "_prelu_kernel"],
    onnx=["LeakyRelu", "PRelu"],
)
def leaky_relu(call: OpCall) -> Work:
    """leaky_relu / prelu / rrelu = x if x > 0 else a*x: multiply + compare-and-select = 2 per
    element (rrelu's random slopes in training are drawn, not counted)."""
    return per_output(call, 2)


@register_op(
    "elu", family="activation", aten=_inplace("elu", "selu", "celu"), onnx=["Elu", "Selu", "Celu"]
)
def elu(call: OpCall) -> Work:
    """elu = x if x > 0 else alpha*(exp(x) - 1): exp, subtract, multiply, select = 4 per
    element. ATen's elu(x, alpha, scale, input_scale) adds 1 multiply for ``scale != 1``
    (selu: 5) and 1 for ``input_scale != 1`` (celu, exp(x/alpha): 5)."""
    if call.op.lower().startswith(("selu", "celu")):
        return per_output(call, 5)
    extra = sum(call.args.get(k) not in (None, 1) for k in ("scale", "input_scale"))
    return per_output(call, 4 + extra)


@register_op("gelu", family="activation", aten=_inplace("gelu"), onnx=["Gelu"])
def gelu(call: OpCall) -> Work:
    """erf form 0.5*x*(1 + erf(x/sqrt(2))): divide, erf, add, multiply by x, multiply by 0.5
    = 5 per element. tanh form (``approximate='tanh'``)
    0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))): x^3 (2 multiplies), *0.044715, +x,
    *sqrt(2/pi), tanh, +1, *x, *0.5 = 9 per element."""
    return per_output(call, 9 if call.arg("approximate", "none") == "tanh" else 5)


@register_op("sigmoid", family="activation", aten=_inplace("sigmoid"), onnx=["Sigmoid"])
def sigmoid(call: OpCall) -> Work:
    """sigmoid = 1 / (1 + exp(-x)): negate, exp, add, divide = 4 per element."""
    return per_output(call, 4)


@register_op("silu", family="activation", aten=_inplace("silu"))
def silu(call: OpCall) -> Work:
    """silu (swish) = x * sigmoid(x): sigmoid 4 + multiply 1 = 5 per element."""
    return per_output(call, 5)


@register_op("mish", family="activation", aten=_inplace("mish"), onnx=["Mish"])
def mish(call: OpCall) -> Work:
    """mish = x * tanh(softplus(x)) = x * tanh(log(1 + exp(x))): exp, add, log, tanh,
    multiply = 5 per element."""
    return per_output(call, 5)


@register_op("tanh", family="activation", aten=_inplace("tanh"), onnx=["Tanh"])
def tanh(call: OpCall) -> Work:
    """tanh: 1 special function per element."""
    return per_output(call, 1)


@register_op("hardswish", family="activation", aten=_inplace("hardswish"), onnx=["HardSwish"])
def hardswish(call: OpCall) -> Work:
    """hardswish = x * relu6(x + 3) / 6: add, 2 clamps, multiply, divide = 5 per element."""
    return per_output(call, 5)


@register_op("hardsigmoid", family="activation", aten=_inplace("hardsigmoid"), onnx=["HardSigmoid"])
def hardsigmoid(call: OpCall) -> Work:
    """hardsigmoid = relu6(x + 3) / 6: add, 2 clamps, divide = 4 per element."""
    return per_output(call, 4)


@register_op("softplus", family="activation", aten=["softplus"], onnx=["Softplus"])
def softplus(call: OpCall) -> Work:
    """softplus = log(1 + exp(beta*x)) / beta, linear above ``threshold``: exp, add, log and
    the threshold compare-and-select = 4 per element; ``beta != 1`` adds a multiply and a
    divide: 6."""
    return per_output(call, 6 if call.args.get("beta") not in (None, 1) else 4)


@register_op("softshrink", family="activation", aten=["softshrink"])
def softshrink(call: OpCall) -> Work:
    """softshrink = x - l if x > l, x + l if x < -l, else 0: 2 compares + 1 add = 3 per
    element."""
    return per_output(call, 3)


@register_op("hardshrink", family="activation", aten=["hardshrink"])
def hardshrink(call: OpCall) -> Work:
    """hardshrink = x if |x| > l else 0: 2 compares (x > l, x < -l) = 2 per element."""
    return per_output(call, 2)


@register_op("glu", family="activation", aten=["glu"])
def glu(call: OpCall) -> Work:
    """glu(x) = a * sigmoid(b), x split in halves a, b along ``dim``: sigmoid 4 + multiply 1
    = 5 per OUTPUT element (half the input)."""
    return per_output(call, 5)


@register_op("log_sigmoid", family="activation", aten=["log_sigmoid", "log_sigmoid_forward"])
def log_sigmoid(call: OpCall) -> Work:
    """log(sigmoid(x)) = log(1 / (1 + exp(-x))): negate, exp, add, divide, log = 5 per
    element (counted on the first output)."""
    return per_output(call, 5)


@register_op("softmax", family="activation", aten=["_softmax", "softmax"], onnx=["Softmax"])
def softmax(call: OpCall) -> Work:
    """softmax over rows of n: max (n-1 compares), subtract the max (n), exp (n), sum (n-1
    adds), divide (n) = 5n - 2 per row (about 5 per element)."""
    rows, n = _row(call, "dim", "axis")
    return Work(flops=rows * (5 * n - 2) if n else 0)


@register_op("safe_softmax", family="activation", aten=["_safe_softmax"])
def safe_softmax(call: OpCall) -> Work:
    """_safe_softmax (attention with fully masked rows): softmax's 5n - 2 per row plus one
    compare per row (is the row's max -inf? then the row is zeros) = 5n - 1 per row."""
    rows, n = _row(call, "dim")
    return Work(flops=rows * (5 * n - 1) if n else 0)


@register_op(
    "log_softmax", family="activation", aten=["_log_softmax", "log_softmax"], onnx=["LogSoftmax"]
)
def log_softmax(call: OpCall) -> Work:
    """log_softmax = (x - max) - log(sum(exp(x - max))) over rows of n: max (n-1), subtract
    (n), exp (n), sum (n-1), log (1), subtract (n) = 4n - 1 per row."""
    rows, n = _row(call, "dim", "axis")
    return Work(flops=rows * (4 * n - 1) if n else 0)
