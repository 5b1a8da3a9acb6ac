"""Convolution formulas, derived by hand and cross-checked with FlopCounterMode."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import modelmeter


def _cost(module: nn.Module, shape: str, convention: str = "exact") -> modelmeter.Cost:
    r = modelmeter.analyze(module, shape, convention=convention)
    assert not r.unsupported
    return r.total().cost


def test_conv2d_no_bias_seed_formula() -> None:
    # Ci=3, K=3, Co=8, out 6x6 (8x8 input, no padding): MACs = 3*9 * 6*6*8 = 27*288 = 7776
    # exact, no bias: (2*Ci*K^2 - 1)*H*W*Co = 53*288 = 15264
    c = _cost(nn.Conv2d(3, 8, 3, bias=False), "1x3x8x8")
    assert (c.macs, c.flops) == (7776, 15264)
    # 2mac: 2*7776 = 15552
    assert _cost(nn.Conv2d(3, 8, 3, bias=False), "1x3x8x8", "2mac").flops == 15552


def test_conv2d_stride_padding_dilation_groups() -> None:
    # in 2x4x9x9, Co=6, K=3, stride 2, padding 2, dilation 2, groups 2:
    # effective kernel 5; out = floor((9 + 4 - 5)/2) + 1 = 5 -> 2x6x5x5 = 300 outputs
    # per output: (Ci/g)*K^2 = 2*9 = 18 MACs -> 5400; bias: FLOPs = 2*5400 = 10800
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)
    c = _cost(conv, "2x4x9x9")
    assert (c.macs, c.flops) == (5400, 10800)
    # params: 6*2*9 + 6 = 114 ; bytes read: input 2*4*81*4 = 2592, weight 432, bias 24
    r = modelmeter.analyze(conv, "2x4x9x9")
    assert r.total().params == 114
    assert (c.bytes_read, c.weight_bytes, c.bytes_written) == (2592 + 432 + 24, 456, 300 * 4)


def test_depthwise_conv() -> None:
    # depthwise 16 channels, K=3, pad 1, 10x10: MACs = 1*9 * 16*10*10 = 14400
    # no bias: (2*9 - 1) * 1600 = 27200
    c = _cost(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), "1x16x10x10")
    assert (c.macs, c.flops) == (14400, 27200)


def _units(module: nn.Module, shape: str, backward: bool = False) -> list[str]:
    r = modelmeter.analyze(module, shape, backward=backward)
    return [rec.runs_on for n in r.modules() for rec in n.ops if "conv" in rec.op]


def test_depthwise_conv_runs_on_the_vector_units() -> None:
    # groups = Ci = 16: one input channel per group, each output sums 3*3 products of one
    # channel -> not a matrix product: "vector"
    assert _units(nn.Conv2d(16, 16, 3, groups=16), "1x16x10x10") == ["vector"]
    # channel multiplier 2 (Co = 32 = 2*groups) is still one input channel per group
    assert _units(nn.Conv2d(16, 32, 3, groups=16), "1x16x10x10") == ["vector"]
    # 4 input channels per group (ResNeXt-like) and a dense conv reduce over channels: matrix
    assert _units(nn.Conv2d(16, 16, 3, groups=4), "1x16x10x10") == ["matrix"]
    assert _units(nn.Conv2d(16, 16, 3), "1x16x10x10") == ["matrix"]
    # a dense conv from one channel (a grayscale stem, groups = 1) is a matrix product
    assert _units(nn.Conv2d(1, 16, 3), "1x1x10x10") == ["matrix"]
    # transposed depthwise (groups = Ci = 8) and the depthwise backward: vector
    assert _units(nn.ConvTranspose2d(8, 8, 3, groups=8), "1x8x5x5") == ["vector"]
    units = _units(nn.Conv2d(16, 16, 3, groups=16), "2x16x10x10", backward=True)
    assert units == ["vector", "vector"]  # forward and convolution_backward


def test_unit_survives_the_json_round_trip() -> None:
    # JSON writes "unit" only when the formula set it; reading it back keeps where ops run
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1))
    r = modelmeter.analyze(model, "1x8x6x6")
    d = r.to_dict()
    again = modelmeter.Report.from_dict(json.loads(json.dumps(d)))
    assert [o.runs_on for n in again.modules() for o in n.ops] == ["vector", "matrix"]
    assert [o.unit for n in again.modules() for o in n.ops] == ["vector", None]


def test_conv1d_and_conv3d() -> None:
    # conv1d 4->8, K=5, L=20 -> 16: MACs = 4*5 * 8*16 = 2560
    assert _cost(nn.Conv1d(4, 8, 5), "1x4x20").macs == 2560
    # conv3d 2->4, K=3, 6^3 -> 4^3: MACs = 2*27 * 4*64 = 13824
    assert _cost(nn.Conv3d(2, 4, 3), "1x2x6x6x6").macs == 13824


def test_transposed_conv() -> None:
    # ConvTranspose2d 8->4, K=4, stride 2, pad 1, 5x5 -> 10x10.
    # each input element is scattered over Co*K^2 outputs: MACs = 8*25 * 4*16 = 12800
    # outputs 4*100 = 400 ; exact, bias: 2*12800 = 25600 ; no bias: 25600 - 400 = 25200
    c = _cost(nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), "1x8x5x5")
    assert (c.macs, c.flops) == (12800, 25600)
    c = _cost(nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False), "1x8x5x5")
    assert c.flops == 25200


@pytest.mark.parametrize(
    "module,shape",
    [
        (nn.Conv2d(3, 16, 5, stride=2, padding=3), (2, 3, 33, 31)),
        (nn.Conv2d(8, 8, 3, groups=4, dilation=2), (1, 8, 20, 20)),
        (nn.ConvTranspose2d(6, 4, 3, stride=3, groups=2, output_padding=1), (1, 6, 7, 7)),
        (nn.ConvTranspose1d(4, 2, 5, stride=2), (3, 4, 11)),
        (nn.Conv3d(4, 8, (1, 3, 3), padding=(0, 1, 1)), (1, 4, 3, 8, 8)),
    ],
)
def test_matches_flop_counter_mode(module: nn.Module, shape: tuple[int, ...]) -> None:
    with FlopCounterMode(display=False) as fc:
        module(torch.randn(shape))
    c = _cost(module, "x".join(map(str, shape)), "2mac")
    assert c.macs * 2 == fc.get_total_flops()
    assert c.flops == fc.get_total_flops()
