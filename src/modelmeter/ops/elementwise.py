"""Elementwise arithmetic, comparisons, rounding and special functions.

Every count is per OUTPUT element (a broadcast input is read once but used many times), with
0 MACs. A multiply, add, divide, compare or special function (exp, log, sqrt, sin, erf ...)
is 1 FLOP; a compare-and-select (max, clamp bound, where) is 1. In-place variants (``add_``)
and scalar overloads (``add.Scalar``) cost the same; the builder reads and writes the target.

Complex tensors are counted in real FLOPs for the arithmetic that models use on them (rotary
embeddings, spectral layers): per complex output element, add/sub 2 (1 when one operand is
real), multiply 6 (4 multiplies + 2 adds; 2 when one operand is real), divide 11
((ac+bd)/(c²+d²), (bc-ad)/(c²+d²): 6 multiplies, 3 adds, 2 divides; 2 by a real divisor,
7 for a real numerator), neg 2, reciprocal 6, abs 4 (sqrt(a²+b²)), sgn 6 (z/|z|). Other ops
on complex tensors (special functions, compares) count as on real ones.
"""

from __future__ import annotations

from modelmeter.registry import OpCall, TensorMeta, Work, per_output, register_op


def _inplace(*names: str) -> list[str]:
    """Each name followed by its in-place variant (``add`` -> ``add``, ``add_``)."""
    return [v for n in names for v in (n, n + "_")]


def _not_one(value: object) -> bool:
    return value is not None and value != 1


def is_complex(value: object) -> bool:
    """A complex tensor or a Python complex number."""
    if isinstance(value, TensorMeta):
        return value.dtype.startswith("complex")
    return isinstance(value, complex)


def _complex_operands(call: OpCall) -> tuple[bool, bool] | None:
    """(first operand complex, second operand complex) when the output is complex, else
    None. Operands by schema name (``self``/``other``), else the first two tensor inputs."""
    if not call.outputs or not call.out.dtype.startswith("complex"):
        return None
    if "self" in call.args:
        a, b = call.args.get("self"), call.args.get("other")
    else:
        a = call.inputs[0] if call.inputs else None
        b = call.inputs[1] if len(call.inputs) > 1 else None
    return is_complex(a), is_complex(b)


@register_op(
    "add", family="elementwise", aten=[*_inplace("add", "sub"), "rsub"], onnx=["Add", "Sub"]
)
def add(call: OpCall) -> Work:
    """a + b, a - b (and rsub, b - a): 1 FLOP per output element. With ``alpha != 1`` the
    other operand is scaled first: a + alpha*b = 2 FLOPs per output. Complex: 2 per output
    (1 when one operand is real), scaling by alpha 2 more."""
    scaled = _not_one(call.args.get("alpha"))
    cplx = _complex_operands(call)
    if cplx is not None:
        return per_output(call, (2 if all(cplx) else 1) + (2 if scaled else 0))
    return per_output(call, 2 if scaled else 1)


@register_op("mul", family="elementwise", aten=_inplace("mul", "square"), onnx=["Mul"])
def mul(call: OpCall) -> Work:
    """a * b (and square, x*x): 1 multiply per output element. Complex: 6 (ac-bd, ad+bc),
    2 when one operand is real (square of a complex: 6)."""
    cplx = _complex_operands(call)
    if cplx is not None:
        return per_output(call, 6 if all(cplx) or call.op.startswith("square") else 2)
    return per_output(call, 1)


@register_op(
    "div", family="elementwise", aten=_inplace("div", "true_divide", "floor_divide"), onnx=["Div"]
)
def div(call: OpCall) -> Work:
    """a / b: 1 divide per output element. With a rounding mode (``floor``/``trunc``), and for
    floor_divide, the quotient is also rounded: 2 FLOPs per output. Complex: 11 (complex by
    complex), 2 (by a real divisor), 7 (real by complex)."""
    cplx = _complex_operands(call)
    if cplx is not None:
        return per_output(call, {(True, True): 11, (True, False): 2}.get(cplx, 7))
    rounded = call.args.get("rounding_mode") is not None or call.op.startswith("floor_divide")
    return per_output(call, 2 if rounded else 1)


@register_op("remainder", family="elementwise", aten=_inplace("remainder", "fmod"), onnx=["Mod"])
def remainder(call: OpCall) -> Work:
    """remainder / fmod: counted as one arithmetic op per output element, like a divide (the
    hardware computes it as one modulo; no separate floor, multiply and subtract)."""
    return per_output(call, 1)


_COMPLEX_UNARY = {"neg": 2, "abs": 4, "reciprocal": 6, "sgn": 6}


@register_op(
    "neg_abs_sign",
    family="elementwise",
    aten=[
        *_inplace("neg", "abs", "reciprocal", "sign", "sgn", "copysign", "heaviside"),
        "angle",
    ],
    onnx=["Neg", "Abs", "Reciprocal", "Sign"],
)
def neg_abs_sign(call: OpCall) -> Work:
    """neg, abs, reciprocal (1/x, a divide), sign/sgn, copysign, heaviside, angle (of a real
    number: a compare-and-select of 0 or pi; of a complex one: atan2): 1 op per output
    element. On complex inputs: neg 2, abs 4 (sqrt(a²+b²)), reciprocal 6 ((a - bi)/(a²+b²)),
    sgn 6 (z/|z|)."""
    x = call.inputs[0] if call.inputs else None
    if is_complex(x):
        return per_output(call, _COMPLEX_UNARY.get(call.op.rstrip("_"), 1))
    return per_output(call, 1)


@register_op(
    "compare",
    family="elementwise",
    aten=[
        *_inplace("eq", "ne", "lt", "le", "gt", "ge"),
        *_inplace("logical_and", "logical_or", "logical_xor", "logical_not"),
        *_inplace("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"),
        *_inplace("bitwise_left_shift", "bitwise_right_shift"),
        "__lshift__",
        "__rshift__",
        "__ilshift__",
        "__irshift__",
        "__and__",
        "__or__",
        "__xor__",
        "__iand__",
        "__ior__",
        "__ixor__",
        "isnan",
        "isinf",
        "isfinite",
        "isposinf",
        "isneginf",
        "signbit",
    ],
    onnx=[
        "Equal",
        "Less",
        "LessOrEqual",
        "Greater",
        "GreaterOrEqual",
        "And",
        "Or",
        "Xor",
        "Not",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "BitwiseNot",
        "BitShift",
        "IsNaN",
        "IsInf",
    ],
)
def compare(call: OpCall) -> Work:
    """Comparisons (eq, ne, lt, le, gt, ge), logical and bitwise ops (also the operator forms
    ``__lshift__``, ``__and__`` ...), isnan/isinf/isfinite, signbit: 1 op per output
    element."""
    return per_output(call, 1)


@register_op(
    "maximum",
    family="elementwise",
    aten=["maximum", "minimum", "fmax", "fmin"],
    onnx=["Max", "Min"],
)
def maximum(call: OpCall) -> Work:
    """Elementwise max/min of k tensors: k-1 compares per output element (k = 2 for ATen's
    maximum/minimum/fmax/fmin; an ONNX Max/Min of one input is a copy: 0)."""
    k = len(call.inputs) if call.op in ("Max", "Min") else 2
    return per_output(call, max(0, k - 1))


@register_op(
    "rounding",
    family="elementwise",
    aten=_inplace("floor", "ceil", "trunc", "fix", "round", "frac"),
    onnx=["Floor", "Ceil", "Round"],
)
def rounding(call: OpCall) -> Work:
    """floor, ceil, trunc, round: 1 op per output element. frac = x - trunc(x): 2.
    round with ``decimals=d``: x*10^d, round, /10^d: 3."""
    if call.op.startswith("frac"):
        return per_output(call, 2)
    if call.op.startswith("round") and call.arg("decimals", 0) != 0:
        return per_output(call, 3)
    return per_output(call, 1)


@register_op(
    "special",
    family="elementwise",
    aten=[
        *_inplace(
            "exp",
            "exp2",
            "expm1",
            "log",
            "log2",
            "log10",
            "log1p",
            "sqrt",
            "rsqrt",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "asinh",
            "acosh",
            "atanh",
            "erf",
            "erfc",
            "erfinv",
            "lgamma",
            "digamma",
            "i0",
            "atan2",
        ),
        "polygamma",
        "polygamma_",
        "special_erfcx",
        "special_i0e",
        "special_i1",
        "special_i1e",
        "special_ndtri",
        "special_bessel_j0",
        "special_bessel_j1",
        "special_bessel_y0",
        "special_bessel_y1",
        "special_modified_bessel_i0",
        "special_modified_bessel_i1",
        "special_modified_bessel_k0",
        "special_modified_bessel_k1",
        "special_scaled_modified_bessel_k0",
        "special_scaled_modified_bessel_k1",
        "special_spherical_bessel_j0",
        "special_airy_ai",
        "special_zeta",
    ],
    onnx=[
        "Exp",
        "Log",
        "Sqrt",
        "Sin",
        "Cos",
        "Tan",
        "Asin",
        "Acos",
        "Atan",
        "Sinh",
        "Cosh",
        "Asinh",
        "Acosh",
        "Atanh",
        "Erf",
    ],
)
def special(call: OpCall) -> Work:
    """Special functions (exp, exp2, expm1, log, log2, log10, log1p, sqrt, rsqrt, sin, cos,
    tan and their inverses and hyperbolic forms, erf, erfc, erfinv, lgamma, digamma, polygamma,
    i0, atan2, and ``torch.special``'s erfcx, i0e, i1, i1e, ndtri, zeta and Bessel/Airy
    functions): 1 FLOP per output element, as the convention counts every special function."""
    return per_output(call, 1)


@register_op("pow", family="elementwise", aten=_inplace("pow", "float_power"), onnx=["Pow"])
def pow_(call: OpCall) -> Work:
    """x ** y: 1 FLOP per output element, whatever the exponent (the convention's pow 1)."""
    return per_output(call, 1)


@register_op(
    "where", family="elementwise", aten=["where", *_inplace("masked_fill")], onnx=["Where"]
)
def where(call: OpCall) -> Work:
    """where(cond, a, b) and masked_fill: 1 select per output element."""
    return per_output(call, 1)


@register_op(
    "clamp",
    family="elementwise",
    aten=_inplace("clamp", "clip", "clamp_min", "clamp_max"),
    onnx=["Clip"],
)
def clamp(call: OpCall) -> Work:
    """clamp(x, min, max): one compare-and-select per given bound and output element: 2 with
    both bounds, 1 with one (clamp_min, clamp_max)."""
    if call.op.startswith(("clamp_min", "clamp_max")):
        return per_output(call, 1)
    if "min" in call.args or "max" in call.args:
        bounds = sum(call.args.get(k) is not None for k in ("min", "max"))
    else:  # ONNX Clip: bounds are the optional 2nd and 3rd inputs
        bounds = len(call.inputs) - 1
    return per_output(call, max(1, bounds))


@register_op("lerp", family="elementwise", aten=_inplace("lerp"))
def lerp(call: OpCall) -> Work:
    """lerp(a, b, w) = a + w*(b - a): subtract, multiply, add = 3 FLOPs per output element."""
    return per_output(call, 3)


@register_op("addcmul", family="elementwise", aten=_inplace("addcmul", "addcdiv"))
def addcmul(call: OpCall) -> Work:
    """addcmul: self + value*t1*t2, addcdiv: self + value*t1/t2: the multiply (or divide) and
    the add = 2 FLOPs per output element; 3 when ``value != 1``."""
    return per_output(call, 3 if _not_one(call.args.get("value")) else 2)


@register_op("nan_to_num", family="elementwise", aten=_inplace("nan_to_num"))
def nan_to_num(call: OpCall) -> Work:
    """nan_to_num: three compare-and-selects per output element (NaN, +inf, -inf): 3."""
    return per_output(call, 3)


@register_op("hypot", family="elementwise", aten=_inplace("hypot"))
def hypot(call: OpCall) -> Work:
    """hypot(a, b) = sqrt(a*a + b*b): 2 multiplies, 1 add, 1 sqrt = 4 FLOPs per output."""
    return per_output(call, 4)


@register_op("xlogy", family="elementwise", aten=_inplace("xlogy"))
def xlogy(call: OpCall) -> Work:
    """xlogy(x, y) = x * log(y): log + multiply = 2 FLOPs per output element."""
    return per_output(call, 2)


@register_op("logaddexp", family="elementwise", aten=["logaddexp", "logaddexp2"])
def logaddexp(call: OpCall) -> Work:
    """logaddexp(a, b) = log(exp(a) + exp(b)): 2 exps, 1 add, 1 log = 4 FLOPs per output
    (base 2 alike)."""
    return per_output(call, 4)


@register_op("logit", family="elementwise", aten=_inplace("logit"))
def logit(call: OpCall) -> Work:
    """logit(x) = log(x / (1 - x)): subtract, divide, log = 3 FLOPs per output element; with
    ``eps`` the input is first clamped to [eps, 1-eps]: +2 = 5."""
    return per_output(call, 5 if call.args.get("eps") is not None else 3)
