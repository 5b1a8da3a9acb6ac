"""Matrix product formulas (mm, addmm, bmm, baddbmm, addbmm, mv, addmv, dot, matmul)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


# Found in review: sum-of-products ops: complex matrix products in real arithmetic, _scaled_mm,
# conv_tbc, _trilinear (nn.Bilinear), grouped convolution gradients, the oneDNN LSTM backward.


def test_complex_mm_and_bmm(kit) -> None:  # noqa: ANN001
    a, b = kit.t(3, 4, dtype="complex64"), kit.t(4, 5, dtype="complex64")
    out = kit.t(3, 5, dtype="complex64")
    c = kit.cost("mm", {"self": a, "mat2": b}, out)
    # 3*4*5 = 60 complex MACs = 240 real MACs ; each of the 15 complex outputs is 2 real sums
    # of 2k = 8 products: (2*8 - 1)*30 = 450 = 2*240 - 30
    assert (c.macs, c.flops) == (240, 450)
    c = kit.cost("mm", {"self": a, "mat2": b}, out, convention="2mac")
    assert (c.macs, c.flops) == (240, 480)
    # the same through torch on real complex tensors (bmm of 2 batches: twice)
    r = kit.run(lambda x, y: torch.bmm(x, y), "2x3x4:complex64", "2x4x5:complex64", mode="real")
    assert (r.total().cost.macs, r.total().cost.flops) == (480, 900)
    # real tensors are unchanged: 60 MACs, (2*4 - 1)*15 = 105
    assert kit.cost("mm", {"self": kit.t(3, 4), "mat2": kit.t(4, 5)}, kit.t(3, 5)).flops == 105


def test_complex_addmm_bias(kit) -> None:  # noqa: ANN001
    a, b = kit.t(3, 4, dtype="complex64"), kit.t(4, 5, dtype="complex64")
    bias, out = kit.t(5, dtype="complex64"), kit.t(3, 5, dtype="complex64")
    c = kit.cost("addmm", {"self": bias, "mat1": a, "mat2": b}, out)
    # 240 real MACs; with the bias each real output costs 2*8 = 16: 2*240 = 480
    assert (c.macs, c.flops) == (240, 480)


def test_scaled_mm(kit) -> None:  # noqa: ANN001
    a, b = kit.t(16, 32, dtype="float8_e4m3fn"), kit.t(32, 8, dtype="float8_e4m3fn")
    sa, sb, out = kit.t(), kit.t(), kit.t(16, 8, dtype="bfloat16")
    args = {"self": a, "mat2": b, "scale_a": sa, "scale_b": sb}
    c = kit.cost("_scaled_mm", args, out)
    # MACs 16*32*8 = 4096 ; (2*32 - 1)*128 = 8064 + 1 multiply by the combined per-tensor
    # scale per output 128 = 8192
    assert (c.macs, c.flops) == (4096, 8192)
    # row-wise scales (16, 1) and (1, 8): 2 multiplies per output ; a bias: + 1 add
    args.update(scale_a=kit.t(16, 1), scale_b=kit.t(1, 8), bias=kit.t(8, dtype="bfloat16"))
    c = kit.cost("_scaled_mm", args, out)
    # 2*4096 (bias takes the missing add) + 2*128 = 8448
    assert c.flops == 8448
    assert kit.cost("_scaled_mm", args, out, convention="2mac").flops == 8192
    # bytes: fp8 operands 512 + 256 B, scales 64 + 32, bias 16 -> 880 ; writes 256 B
    assert (c.bytes_read, c.bytes_written) == (880, 256)


def test_conv_tbc(kit) -> None:  # noqa: ANN001
    for mode in ("meta", "real"):
        r = kit.run(lambda x, w, b: torch.conv_tbc(x, w, b, 1), "5x2x3", "3x3x4", "4", mode=mode)
        c = r.total().cost
        # (T = 5, B = 2, Co = 4) outputs = 40, each K*Ci = 3*3 = 9 products + bias:
        # MACs 360, exact FLOPs 2*360 = 720
        assert (c.macs, c.flops) == (360, 720)


def test_bilinear_layer(kit) -> None:  # noqa: ANN001
    for mode in ("meta", "real"):
        r = kit.run(nn.Bilinear(3, 4, 5), "2x3", "2x4", mode=mode)
        c = r.by_operator()["aten._trilinear"].cost
        # N = 2 rows, O = 5, I1 = 3, I2 = 4: per output x1^T W (12 products into 4 sums) and
        # then . x2 (4 products): MACs 2*5*(12 + 4) = 160 ; exact FLOPs 2*160 - (2*5*4 sums
        # of the first pair = 40) - (10 outputs) = 270 = N*O*(2*I1*I2 + I2 - 1)
        assert (c.macs, c.flops) == (160, 270)
        # the bias is a separate add: 10
        assert r.by_operator()["aten.add"].cost.flops == 10


def test_grouped_conv_backward_flop_counter_counts_weight_gradient_g_times() -> None:
    # groups = 2: x (2, 4, 9, 9), w (6, 2, 3, 3), dilation 2 -> (2, 6, 5, 5). Forward MACs =
    # 300 outputs * 2*3*3 = 5400. The weight gradient (the input needs none) sums, for each of
    # the 6*2*3*3 = 108 weights, 2*5*5 = 50 products: 5400 MACs, as the forward.
    # FlopCounterMode's grad_weight formula ignores the groups and counts g = 2 times that.
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 3, groups=2, dilation=2, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    r = modelmeter.analyze(Conv(), "2x4x9x9", convention="2mac", backward=True)
    assert r.by_operator("backward")["aten.convolution_backward"].cost.macs == 5400
    m = Conv()
    with FlopCounterMode(display=False) as fc:
        m(torch.randn(2, 4, 9, 9)).sum().backward()
    # FlopCounterMode: forward 2*5400 = 10800 + grad_weight 2 * 2*5400 = 21600
    assert fc.get_total_flops() == 10800 + 21600


def test_onednn_lstm_backward(kit) -> None:  # noqa: ANN001
    lstm = nn.LSTM(8, 6)
    r = kit.run(lstm, "5x2x8", mode="real", backward=True)
    c = r.by_operator("backward")["aten.mkldnn_rnn_layer_backward"].cost
    # R = 5*2 = 10 rows, G*H = 24, I = 8, H = 6. MACs: dx 10*24*8 = 1920, dh 10*24*6 = 1440,
    # dW_ih 1920, dW_hh 1440 = 6720 (twice the forward's 3360).
    # exact FLOPs: 3840 - 80 (dx outputs) + 2880 - 60 + 3840 - 192 + 2880 - 144 = 12964 ;
    # gate gradients 10 rows * 6 * 23 = 1380 ; two bias gradients 2*(10 - 1)*24 = 432
    assert c.macs == 6720
    assert c.flops == 12964 + 1380 + 432


def test_empty_contraction_costs_nothing(kit) -> None:  # noqa: ANN001
    # (3, 0) @ (0, 5): k = 0, the result is 15 zeros: 0 MACs and 0 FLOPs (2*0 - 15 would be
    # negative) ; writes 60 B
    for mode in ("meta", "real"):
        c = kit.run(lambda a, b: a @ b, "3x0", "0x5", mode=mode).total().cost
        assert (c.macs, c.flops, c.bytes_written) == (0, 0, 60)
