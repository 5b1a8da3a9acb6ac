"""Elementwise formulas: arithmetic, comparisons, rounding, special functions, where, clamp."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
import torchvision

import modelmeter
from modelmeter.registry import FAMILIES, formulas, lookup, register_op, zero_cost_targets
from modelmeter.report import Cost


def test_every_aten_target_exists_in_torch() -> None:
    # a typo in a target name would silently never match: every name, in every family and
    # among the zero-cost ones, must be an ATen (or prims) op packet of the installed torch,
    # or an op of another namespace of the installed torch or torchvision (torchvision.nms,
    # quantized.linear_dynamic); bitsandbytes' ops register when it is imported (an optional
    # package: where it is missing, its names are checked by nothing)
    def exists(t: str) -> bool:
        namespace, _, name = t.rpartition(".")
        if namespace == "bitsandbytes":
            if importlib.util.find_spec("bitsandbytes") is None:
                return True
            from modelmeter.frontends.torch.bnb_optimizers import load_optim

            load_optim()
        if namespace:
            return hasattr(getattr(torch.ops, namespace), name)
        return hasattr(torch.ops.aten, t) or hasattr(torch.ops.prims, t)

    missing = [(f.family, t) for f in formulas() for t in f.targets["aten"] if not exists(t)]
    missing += [("zero-cost", t) for t in zero_cost_targets("aten") if not exists(t)]
    assert missing == []


def test_every_onnx_target_exists_in_onnx_or_onnxruntime() -> None:
    defs = pytest.importorskip("onnx.defs")
    ort = pytest.importorskip("onnxruntime.capi.onnxruntime_pybind11_state")
    contrib = {(s.domain, s.name) for s in ort.get_all_operator_schema()}

    def exists(t: str) -> bool:
        domain, _, name = t.rpartition(".")
        return defs.has(name, domain) or (domain, name) in contrib

    missing = [(f.family, t) for f in formulas() for t in f.targets["onnx"] if not exists(t)]
    missing += [("zero-cost", t) for t in zero_cost_targets("onnx") if not exists(t)]
    assert missing == []


def test_families_are_declared_and_are_the_hardware_kernel_classes() -> None:
    from modelmeter.hardware.schema import KERNEL_CLASSES

    # every declared family has formulas with targets (the two tests above check them all),
    # and every formula's family is declared
    assert {f.family for f in formulas() if any(f.targets.values())} == set(FAMILIES)
    with pytest.raises(ValueError, match="unknown family 'convs'"):
        register_op("nothing", family="convs")
    # hardware files' [efficiency.kernels] keys: the families, and depthwise and grouped
    # (convolutions with groups > 1: one input channel per group, or several) and
    # attention-decode (attention of a few queries over a longer cache: analysis/kernels.py)
    assert set(KERNEL_CLASSES) == {*FAMILIES, "attention-decode", "depthwise", "grouped"}


def test_add_broadcast_alpha_and_bytes(kit) -> None:  # noqa: ANN001
    a, b = kit.t(2, 3), kit.t(3)
    out = kit.t(2, 3)
    # per OUTPUT element: 2*3 = 6 adds; reads 6*4 + 3*4 = 36 B, writes 24 B
    assert kit.cost("add", {"self": a, "other": b}, out) == Cost(0, 6, 36, 24, 0)
    # alpha = 2: a + 2*b = 2 per output: 12
    assert kit.cost("add", {"self": a, "other": b, "alpha": 2}, out).flops == 12
    assert kit.cost("sub", {"self": a, "other": b, "alpha": 1}, out).flops == 6
    # scalar overload: other is a number, only `a` is read: 24 B
    c = kit.cost("add", {"self": a, "other": 2.0}, out)
    assert (c.flops, c.bytes_read) == (6, 24)


def test_inplace_reads_and_writes_its_target(kit) -> None:  # noqa: ANN001
    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a.mul_(b)

    r = kit.run(f, "4x5", "4x5")
    assert kit.ops(r) == {"aten.mul_": 1}
    # 20 multiplies; reads a and b 2*80 = 160 B; writes a 80 B
    assert r.total().cost == Cost(0, 20, 160, 80, 0)


def test_div_rounding_and_floor_divide(kit) -> None:  # noqa: ANN001
    x, y = kit.t(10), kit.t(10)
    assert kit.cost("div", {"self": x, "other": y}, kit.t(10)).flops == 10
    # a rounded quotient: divide + round = 2 per output: 20
    assert kit.cost("div", {"self": x, "other": y, "rounding_mode": "floor"}, kit.t(10)).flops == 20
    assert kit.cost("floor_divide", {"self": x, "other": y}, kit.t(10)).flops == 20
    assert kit.cost("remainder", {"self": x, "other": 3}, kit.t(10)).flops == 10
    assert kit.cost("fmod_", {"self": x, "other": 3}, kit.t(10)).flops == 10


def test_comparisons_write_bool_bytes(kit) -> None:  # noqa: ANN001
    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a < b) & (a != 0) | ~(b >= a)

    r = kit.run(f, "3x4", "3x4")
    # lt, ne, ge, bitwise_not, bitwise_and, bitwise_or: 6 ops * 12 = 72 FLOPs
    assert r.total().cost.flops == 72
    # reads: lt 48+48, ne 48, ge 48+48, not 12, and 12+12, or 12+12 = 300
    # writes: 6 bool outputs of 12 B = 72
    assert (r.total().cost.bytes_read, r.total().cost.bytes_written) == (300, 72)
    for op in ("isnan", "isinf", "signbit", "logical_xor", "bitwise_left_shift"):
        assert kit.cost(op, {"self": kit.t(7)}, kit.t(7, dtype="bool")).flops == 7


def test_maximum_and_onnx_variadic_max(kit) -> None:  # noqa: ANN001
    assert kit.cost("maximum", {"self": kit.t(6), "other": kit.t(6)}, kit.t(6)).flops == 6
    # ONNX Max of 3 inputs: 2 compares per output: 2*6 = 12
    args = {"a": kit.t(6), "b": kit.t(6), "c": kit.t(1)}
    assert kit.cost("Max", args, kit.t(6), frontend="onnx").flops == 12


def test_rounding_family(kit) -> None:  # noqa: ANN001
    x = kit.t(5)
    assert kit.cost("floor", {"self": x}, kit.t(5)).flops == 5
    assert kit.cost("round", {"self": x}, kit.t(5)).flops == 5
    # round(decimals=2): scale, round, unscale = 3*5 = 15 ; frac = x - trunc(x): 2*5 = 10
    assert kit.cost("round", {"self": x, "decimals": 2}, kit.t(5)).flops == 15
    assert kit.cost("frac", {"self": x}, kit.t(5)).flops == 10


def test_special_functions_and_pow_one_each(kit) -> None:  # noqa: ANN001
    for op in ("exp", "exp2", "expm1", "log", "log1p", "sqrt", "rsqrt_", "sin", "erf", "atan2"):
        assert kit.cost(op, {"self": kit.t(2, 4)}, kit.t(2, 4)).flops == 8, op
    assert kit.cost("pow", {"self": kit.t(2, 4), "exponent": 3}, kit.t(2, 4)).flops == 8
    for op in ("neg", "abs", "reciprocal", "sign", "copysign"):
        assert kit.cost(op, {"self": kit.t(3)}, kit.t(3)).flops == 3, op


def test_where_and_masked_fill(kit) -> None:  # noqa: ANN001
    cond, a, b = kit.t(4, 1, dtype="bool"), kit.t(4, 6), kit.t(6)
    # 24 selects; reads cond 4 B + a 96 B + b 24 B = 124 B; writes 96 B
    assert kit.cost("where", {"condition": cond, "self": a, "other": b}, kit.t(4, 6)) == Cost(
        0, 24, 124, 96, 0
    )
    assert kit.cost("masked_fill_", {"self": a, "mask": cond, "value": 0.0}, a).flops == 24


def test_clamp_bounds(kit) -> None:  # noqa: ANN001
    x = kit.t(10)
    # both bounds: 2 compare-and-selects per element = 20; one bound: 10
    assert kit.cost("clamp", {"self": x, "min": -1.0, "max": 1.0}, kit.t(10)).flops == 20
    assert kit.cost("clamp", {"self": x, "min": 0.0, "max": None}, kit.t(10)).flops == 10
    assert kit.cost("clamp_min_", {"self": x, "min": 0.0}, x).flops == 10
    # ONNX Clip(x, lo, hi): bounds are inputs 2 and 3 -> 20
    assert (
        kit.cost("Clip", {"x": x, "lo": kit.t(), "hi": kit.t()}, kit.t(10), frontend="onnx").flops
        == 20
    )


def test_fused_arithmetic(kit) -> None:  # noqa: ANN001
    x = kit.t(8)
    # lerp = a + w*(b - a): 3*8 = 24
    assert kit.cost("lerp", {"self": x, "end": kit.t(8), "weight": 0.5}, kit.t(8)).flops == 24
    # addcmul = self + value*t1*t2: 2*8 = 16 ; value != 1: 3*8 = 24
    args = {"self": x, "tensor1": kit.t(8), "tensor2": kit.t(8)}
    assert kit.cost("addcmul", args, kit.t(8)).flops == 16
    assert kit.cost("addcdiv_", {**args, "value": 0.5}, x).flops == 24
    # nan_to_num 3*8 = 24 ; hypot (2 mul, add, sqrt) 4*8 = 32 ; xlogy 2*8 = 16
    assert kit.cost("nan_to_num", {"self": x}, kit.t(8)).flops == 24
    assert kit.cost("hypot", {"self": x, "other": kit.t(8)}, kit.t(8)).flops == 32
    assert kit.cost("xlogy", {"self": x, "other": kit.t(8)}, kit.t(8)).flops == 16
    # logaddexp: 2 exp, add, log = 4*8 = 32 ; logit 3*8 = 24, with eps (clamp first) 5*8 = 40
    assert kit.cost("logaddexp", {"self": x, "other": kit.t(8)}, kit.t(8)).flops == 32
    assert kit.cost("logit", {"self": x}, kit.t(8)).flops == 24
    assert kit.cost("logit", {"self": x, "eps": 1e-6}, kit.t(8)).flops == 40


def test_functional_model_where_cumsum_clamp_pow_sqrt_exp(kit) -> None:  # noqa: ANN001
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a = x * y  # (4,8) * (8,): 32 multiplies
        b = torch.clamp(a, -1.0, 1.0)  # 2*32 = 64
        c = torch.where(b > 0, b.exp(), b.pow(2))  # gt 32 + exp 32 + pow 32 + where 32 = 128
        d = torch.cumsum(c, dim=1)  # 4 rows of 8: 4*7 = 28 adds
        e = (d.abs() + 1).sqrt()  # abs 32 + add 32 + sqrt 32 = 96
        return e / y  # 32 divides

    r = kit.run(f, "4x8", "8")
    t = r.total().cost
    assert t.macs == 0
    # 32 + 64 + 128 + 28 + 96 + 32 = 380
    assert t.flops == 380
    # fp32 (4,8) = 128 B, y = 32 B, bool (4,8) = 32 B. Reads: mul 128+32, clamp 128, gt 128,
    # exp 128, pow 128, where 32+128+128, cumsum 128, abs 128, add 128, sqrt 128, div 128+32
    # = 160 + 4*128 + 288 + 4*128 + 160 = 1632
    assert t.bytes_read == 1632
    # writes: ten (4,8) fp32 outputs 10*128 + one bool (gt) 32 = 1312
    assert t.bytes_written == 1312
    assert set(kit.ops(r)) == {
        "aten.mul",
        "aten.clamp",
        "aten.gt",
        "aten.exp",
        "aten.pow",
        "aten.where",
        "aten.cumsum",
        "aten.abs",
        "aten.add",
        "aten.sqrt",
        "aten.div",
    }


def test_scalar_and_rsub_overloads(kit) -> None:  # noqa: ANN001
    def f(x: torch.Tensor) -> torch.Tensor:
        return (1 - x) * 3 + torch.sub(x, x, alpha=2)

    r = kit.run(f, "5")
    # rsub 5 + mul 5 + sub with alpha (x - 2*x) 2*5 = 10 + add 5 = 25
    assert r.total().cost.flops == 25


def test_onnx_names_are_registered() -> None:
    for name in ("Add", "Mul", "Div", "Equal", "Where", "Clip", "Pow", "Exp", "Sqrt", "Max"):
        assert lookup("onnx", name) is not None, name


@pytest.mark.parametrize(
    "name",
    ["resnet50", "mobilenet_v3_large", "efficientnet_b0", "vit_b_16", "swin_t", "convnext_tiny",
     "maxvit_t"],
)
def test_torchvision_models_fully_covered(name: str) -> None:
    # all formula families together: no op of these models may be left unsupported
    # (training mode on purpose: dropout and stochastic depth run too)
    model = torchvision.models.get_model(name)
    r = modelmeter.analyze(model, "1x3x224x224", mode="meta")
    assert r.unsupported == {}


def test_functional_calls_fully_covered(kit) -> None:  # noqa: ANN001
    def f(x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(x, scale_factor=2, mode="bilinear")
        y = F.gelu(y) + torch.cumsum(y, -1)
        y = torch.where(y > 0, y, y * 0.1).softmax(-1)
        return F.log_softmax(y.flatten(1), 1).logsumexp(1).sigmoid()

    r = kit.run(f, "2x3x4x4")
    assert r.total().cost.flops > 0


# Found in review: the elementwise family: complex arithmetic in real FLOPs, operator-form
# bitwise ops, special functions that would otherwise decompose to unsupported prims, ONNX Max
# of one input, and ATen out= variants of maximum.


def test_complex_arithmetic_counts_real_flops(kit) -> None:  # noqa: ANN001
    z, w, r = kit.t(10, dtype="complex64"), kit.t(10, dtype="complex64"), kit.t(10)
    out = kit.t(10, dtype="complex64")
    # complex * complex: (ac - bd) + (ad + bc)i = 4 multiplies + 2 adds = 6 per element: 60
    assert kit.cost("mul", {"self": z, "other": w}, out).flops == 60
    # complex * real: 2 multiplies per element: 20 ; times a Python real scalar alike
    assert kit.cost("mul", {"self": z, "other": r}, out).flops == 20
    assert kit.cost("mul", {"self": z, "other": 2.0}, out).flops == 20
    # complex * Python complex scalar: 6 per element: 60
    assert kit.cost("mul", {"self": z, "other": 1j}, out).flops == 60
    # complex + complex: 2 adds per element: 20 ; + real: 1 per element: 10
    assert kit.cost("add", {"self": z, "other": w}, out).flops == 20
    assert kit.cost("sub", {"self": z, "other": r}, out).flops == 10
    # alpha != 1 scales the other operand: 2 more per element: (2 + 2)*10 = 40
    assert kit.cost("add", {"self": z, "other": w, "alpha": 2}, out).flops == 40
    # complex / complex: 6 multiplies, 3 adds, 2 divides = 11 per element: 110
    assert kit.cost("div", {"self": z, "other": w}, out).flops == 110
    # complex / real: 2 divides: 20 ; real / complex: (a*c, -a*d)/(c^2 + d^2): 7: 70
    assert kit.cost("div", {"self": z, "other": r}, out).flops == 20
    assert kit.cost("div", {"self": r, "other": z}, out).flops == 70
    # bytes: complex64 is 8 B per element: reads 80 + 80, writes 80
    c = kit.cost("mul", {"self": z, "other": w}, out)
    assert (c.bytes_read, c.bytes_written) == (160, 80)


def test_complex_unary_ops(kit) -> None:  # noqa: ANN001
    z = kit.t(5, dtype="complex64")
    # abs: sqrt(a^2 + b^2) = 2 multiplies, 1 add, 1 sqrt = 4 per element -> 20 (real output)
    assert kit.cost("abs", {"self": z}, kit.t(5)).flops == 20
    # neg: 2 ; reciprocal (a - bi)/(a^2 + b^2): 2 mul + 1 add + 2 div + 1 negation = 6 -> 30
    assert kit.cost("neg", {"self": z}, kit.t(5, dtype="complex64")).flops == 10
    assert kit.cost("reciprocal", {"self": z}, kit.t(5, dtype="complex64")).flops == 30
    # real inputs keep 1 per element
    assert kit.cost("abs", {"self": kit.t(5)}, kit.t(5)).flops == 5
    # angle: 1 per element (atan2 for complex, a select for real)
    assert kit.cost("angle", {"self": z}, kit.t(5)).flops == 5


def test_rotary_embedding_with_complex_numbers(kit) -> None:  # noqa: ANN001
    # LLaMA-style rotary embedding: view pairs as complex and multiply by e^{i theta}
    def rope(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
        freqs = torch.polar(torch.ones_like(theta), theta)
        return torch.view_as_real(xc * freqs).flatten(-2)

    for mode in ("meta", "real"):
        r = kit.run(rope, "2x8x16", "8x8", mode=mode)
        ops = r.by_operator()
        # polar: cos 64 + sin 64 + 2 real multiplies by |z| (64 each) = 256 ;
        # x * freqs: (2, 8, 8) complex products, 6 each = 768 -> 1024
        assert ops["aten.mul"].cost.flops == 128 + 768
        assert r.total().cost.flops == 1024


def test_operator_form_bitwise_ops(kit) -> None:  # noqa: ANN001
    # a << 1 reaches ATen as __lshift__: 1 op per element: 4*10 = 40
    r = kit.run(lambda a: a << 1, "4x10:int64")
    assert r.total().cost == Cost(0, 40, 320, 320, 0)
    r = kit.run(lambda a: a >> 2, "4x10:int64", mode="real")
    assert r.total().cost.flops == 40


def test_special_functions_reach_as_one_op(kit) -> None:  # noqa: ANN001
    # these used to decompose into prims without formulas (unsupported); each is 1 per element
    fns = [
        torch.special.erfcx,
        torch.special.i0e,
        torch.special.i1,
        torch.special.i1e,
        torch.special.ndtri,
        torch.special.bessel_j0,
        torch.special.bessel_y1,
        torch.special.modified_bessel_k0,
        lambda x: torch.polygamma(1, x),
    ]
    for fn in fns:
        for mode in ("meta", "real"):
            # 4*10 = 40 elements, 1 FLOP each
            assert kit.run(fn, "4x10", mode=mode).total().cost.flops == 40


def test_maximum_counts_two_operands_and_onnx_single_input(kit) -> None:  # noqa: ANN001
    a, b, out = kit.t(6), kit.t(6), kit.t(6)
    # ATen maximum.out: the out tensor is not a third operand: 1 compare per element = 6
    assert kit.cost("maximum", {"self": a, "other": b, "out": out}, out).flops == 6
    # ONNX Max of a single input is a copy: 0 compares
    assert kit.cost("Max", {"data_0": a}, out, frontend="onnx").flops == 0


def test_sign_gradient_zero_tensor_is_free(kit) -> None:  # noqa: ANN001
    from torch import nn

    class Sign(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sign(x * self.w)

    # the gradient of sign is an _efficientzerotensor (no memory, no arithmetic): declared
    # zero-cost, so nothing is unsupported
    r = kit.run(Sign(), "4x10", mode="real", backward=True)
    assert "aten._efficientzerotensor" not in r.by_operator("backward")
