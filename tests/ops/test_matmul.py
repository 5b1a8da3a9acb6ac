"""Matrix product formulas (mm, addmm, bmm, baddbmm, addbmm, mv, addmv, dot, matmul)."""

from __future__ import annotations

import torch

import modelmeter


def _cost(fn, *shapes: str, convention: str = "exact") -> modelmeter.Cost:  # noqa: ANN001
    r = modelmeter.analyze(fn, shapes, convention=convention)
    assert not r.unsupported, r.unsupported
    return r.total().cost


def test_mm() -> None:
    # (3,4)@(4,5): MACs 60; exact (2*4-1)*15 = 105; 2mac 120
    assert _cost(torch.mm, "3x4", "4x5") == modelmeter.Cost(60, 105, (12 + 20) * 4, 15 * 4, 0)
    assert _cost(torch.mm, "3x4", "4x5", convention="2mac").flops == 120


def test_addmm_alpha_beta() -> None:
    # bias + (3,4)@(4,5): MACs 60; exact 2*4*15 = 120
    assert _cost(torch.addmm, "5", "3x4", "4x5").flops == 120

    # alpha=2, beta=3: one extra multiply per output for each: 120 + 15 + 15 = 150
    def scaled(b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.addmm(b, x, y, beta=3, alpha=2)

    assert _cost(scaled, "5", "3x4", "4x5").flops == 150
    assert _cost(scaled, "5", "3x4", "4x5", convention="2mac").flops == 120


def test_bmm_baddbmm_addbmm() -> None:
    # (2,3,4)@(2,4,5): MACs 2*3*4*5 = 120; exact (2*4-1)*30 = 210
    assert (_cost(torch.bmm, "2x3x4", "2x4x5").flops) == 210
    # baddbmm: bias over 30 outputs: 2*120 = 240
    assert _cost(torch.baddbmm, "2x3x5", "2x3x4", "2x4x5").flops == 240
    # addbmm sums over the batch: 15 outputs of 2*4 = 8 products; with bias 2*8*15 = 240
    c = _cost(torch.addbmm, "3x5", "2x3x4", "2x4x5")
    assert (c.macs, c.flops) == (120, 240)


def test_mv_addmv_dot() -> None:
    # (6,4)@(4,): MACs 24; exact (2*4-1)*6 = 42 ; addmv 2*4*6 = 48 ; dot 4 MACs, 7 FLOPs
    assert _cost(torch.mv, "6x4", "4").flops == 42
    assert _cost(torch.addmv, "6", "6x4", "4").flops == 48
    assert (_cost(torch.dot, "4", "4").macs, _cost(torch.dot, "4", "4").flops) == (4, 7)


def test_matmul_broadcast_and_linear_3d() -> None:
    # (2,1,3,4)@(5,4,6) broadcasts to (2,5,3,6): MACs 2*5*3*4*6 = 720
    assert _cost(torch.matmul, "2x1x3x4", "5x4x6").macs == 720
    # linear on (2,7,8) -> 16 with bias: MACs 2*7*8*16 = 1792; exact 2*1792 = 3584
    lin = torch.nn.Linear(8, 16)
    c = modelmeter.analyze(lin, "2x7x8").total().cost
    assert (c.macs, c.flops) == (1792, 3584)
