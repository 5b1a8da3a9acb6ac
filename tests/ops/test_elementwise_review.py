"""Review of the elementwise family: complex arithmetic in real FLOPs, operator-form bitwise
ops, special functions that would otherwise decompose to unsupported prims, ONNX Max of one
input, and ATen out= variants of maximum."""

from __future__ import annotations

import torch

from modelmeter.report import Cost


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
