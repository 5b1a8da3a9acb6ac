"""Activation formulas and the softmax family, through nn modules and hand-built calls."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelmeter.report import Cost

# (module, FLOPs per element, derivation) on a (2, 6) input: 12 elements.
PER_ELEMENT = [
    (nn.ReLU(), 1, "max(x, 0)"),
    (nn.ReLU(inplace=True), 1, "relu_"),
    (nn.Threshold(0.1, 2.0), 1, "compare-and-select"),
    (nn.ReLU6(), 2, "hardtanh: max then min"),
    (nn.Hardtanh(), 2, "max then min"),
    (nn.LeakyReLU(0.1), 2, "multiply + select"),
    (nn.RReLU(), 2, "eval: leaky with the mean slope"),
    (nn.ELU(), 4, "exp, -1, *alpha, select"),
    (nn.SELU(), 5, "elu + *scale"),
    (nn.CELU(0.5), 5, "elu + x/alpha"),
    (nn.GELU(), 5, "/sqrt2, erf, +1, *x, *0.5"),
    (nn.GELU(approximate="tanh"), 9, "x^3 (2), *c, +x, *k, tanh, +1, *x, *0.5"),
    (nn.Sigmoid(), 4, "neg, exp, +1, 1/"),
    (nn.SiLU(), 5, "sigmoid 4 + *x"),
    (nn.Mish(), 5, "exp, +1, log, tanh, *x"),
    (nn.Tanh(), 1, "tanh"),
    (nn.Hardswish(), 5, "+3, 2 clamps, *x, /6"),
    (nn.Hardsigmoid(), 4, "+3, 2 clamps, /6"),
    (nn.Softplus(), 4, "exp, +1, log, threshold select"),
    (nn.Softplus(beta=2.0), 6, "beta != 1: + *beta, /beta"),
    (nn.Softshrink(), 3, "2 compares + 1 add"),
    (nn.Hardshrink(), 2, "2 compares"),
    (nn.LogSigmoid(), 5, "neg, exp, +1, 1/, log"),
]


@pytest.mark.parametrize(("module", "per", "why"), PER_ELEMENT, ids=lambda v: str(v)[:30])
def test_per_element_activations(kit, module: nn.Module, per: int, why: str) -> None:  # noqa: ANN001
    r = kit.run(module.eval(), "2x6")
    # 12 elements * `per` FLOPs each (see `why`)
    assert r.total().cost.flops == 12 * per
    assert r.total().cost.macs == 0


def test_relu_bytes_and_inplace(kit) -> None:  # noqa: ANN001
    # 2*6 fp32 = 48 B read, 48 B written, in place or not
    assert kit.run(nn.ReLU(), "2x6").total().cost == Cost(0, 12, 48, 48, 0)
    assert kit.run(nn.ReLU(inplace=True), "2x6").total().cost == Cost(0, 12, 48, 48, 0)


def test_prelu_reads_its_weight(kit) -> None:  # noqa: ANN001
    r = kit.run(nn.PReLU(num_parameters=3), "2x3x4")
    # 24 elements * (multiply + select) = 48; reads x 96 B + weight 3*4 = 12 B (a weight)
    assert r.total().cost == Cost(0, 48, 108, 96, 12)


def test_gelu_formula_reads_approximate_arg(kit) -> None:  # noqa: ANN001
    x = kit.t(10)
    assert kit.cost("gelu", {"self": x}, kit.t(10)).flops == 50  # 5*10
    assert kit.cost("gelu", {"self": x, "approximate": "none"}, kit.t(10)).flops == 50
    assert kit.cost("gelu", {"self": x, "approximate": "tanh"}, kit.t(10)).flops == 90  # 9*10


def test_elu_scale_args(kit) -> None:  # noqa: ANN001
    x = kit.t(10)
    args = {"self": x, "alpha": 1.0, "scale": 1.0, "input_scale": 1.0}
    assert kit.cost("elu", args, kit.t(10)).flops == 40  # 4*10
    # selu as ATen elu(scale=1.0507): +1 multiply: 5*10 = 50 ; both scales: 6*10 = 60
    assert kit.cost("elu", {**args, "scale": 1.0507}, kit.t(10)).flops == 50
    assert kit.cost("elu", {**args, "scale": 2.0, "input_scale": 0.5}, kit.t(10)).flops == 60
    assert kit.cost("Selu", {"X": x}, kit.t(10), frontend="onnx").flops == 50


def test_glu_counts_output_elements(kit) -> None:  # noqa: ANN001
    r = kit.run(nn.GLU(dim=-1), "2x6")
    # output (2,3) = 6 elements * (sigmoid 4 + multiply 1) = 30; reads 48 B, writes 24 B
    assert r.total().cost == Cost(0, 30, 48, 24, 0)


def test_softmax_per_row(kit) -> None:  # noqa: ANN001
    r = kit.run(nn.Softmax(dim=1), "3x4")
    # 3 rows of n = 4: max 3 + sub 4 + exp 4 + sum 3 + div 4 = 5*4 - 2 = 18 per row -> 54
    assert kit.ops(r) == {"aten._softmax": 1}
    assert r.total().cost == Cost(0, 54, 48, 48, 0)
    # along dim 0: 4 rows of n = 3: 5*3 - 2 = 13 per row -> 52
    assert kit.run(nn.Softmax(dim=0), "3x4").total().cost.flops == 52


def test_log_softmax_per_row(kit) -> None:  # noqa: ANN001
    r = kit.run(nn.LogSoftmax(dim=-1), "3x4")
    # 3 rows of n = 4: max 3 + sub 4 + exp 4 + sum 3 + log 1 + sub 4 = 4*4 - 1 = 15 -> 45
    assert r.total().cost.flops == 45


def test_safe_softmax_and_onnx_softmax(kit) -> None:  # noqa: ANN001
    x = kit.t(2, 5, 7)
    # 10 rows of 7: (5*7 - 2) + 1 (is the row all -inf?) = 34 per row -> 340
    assert kit.cost("_safe_softmax", {"self": x, "dim": -1}, kit.t(2, 5, 7)).flops == 340
    # ONNX Softmax(axis=1): 14 rows of 5: 5*5 - 2 = 23 per row -> 322
    assert (
        kit.cost("Softmax", {"input": x, "axis": 1}, kit.t(2, 5, 7), frontend="onnx").flops == 322
    )


def test_functional_attention_scores_softmax(kit) -> None:  # noqa: ANN001
    def f(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v

    r = kit.run(f, "1x4x8", "1x4x8", "1x4x8")
    # scores (1,4,4): softmax over 4 rows of 4: 18 per row = 72 ; bmm exact: (2*8-1)*16 = 240
    # and (2*4-1)*32 = 224 ; total 72 + 240 + 224 = 536
    assert r.total().cost.flops == 536
