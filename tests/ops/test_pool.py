"""Pooling formulas: max, average (padding, ceil_mode, dilation), adaptive, fractional,
global and unpooling."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelmeter
from modelmeter.ops.pool import adaptive_lengths, covered_lengths
from modelmeter.registry import Formula, OpCall, TensorMeta, lookup
from modelmeter.report import Cost


def _cost(model, *shapes: str, mode: str = "meta") -> modelmeter.Cost:  # noqa: ANN001
    r = modelmeter.analyze(model, shapes if len(shapes) > 1 else shapes[0], mode=mode)
    assert not r.unsupported, r.unsupported
    return r.total().cost


def test_covered_lengths() -> None:
    # 9 wide, kernel 3, stride 2, pad 1 -> 5 windows: [-1..1] 2, [1..3] 3, 3, 3, [7..9] 2
    assert covered_lengths(9, 5, 3, 2, 1) == [2, 3, 3, 3, 2]
    # dilation 2, kernel 3, stride 1 over 7 -> 3 windows of 3 taps each
    assert covered_lengths(7, 3, 3, 1, 0, 2) == [3, 3, 3]
    # ceil_mode: 5 wide, kernel 2, stride 2 -> 3 windows, the last one covers 1
    assert covered_lengths(5, 3, 2, 2, 0) == [2, 2, 1]


def test_adaptive_lengths() -> None:
    # 9 -> 4: [0,3) [2,5) [4,7) [6,9) = 3 each (overlapping)
    assert adaptive_lengths(9, 4) == [3, 3, 3, 3]
    # 5 -> 3: [0,2) [1,4) [3,5) = 2, 3, 2
    assert adaptive_lengths(5, 3) == [2, 3, 2]
    # 7 -> 3: [0,3) [2,5) [4,7)
    assert adaptive_lengths(7, 3) == [3, 3, 3]


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_max_pool2d_padded(mode: str) -> None:
    # 2x4x9x9, k3 s2 p1 -> 5x5; covered per dim 2+3+3+3+2 = 13:
    # compares = 8 planes * (13*13 - 25) = 8*144 = 1152
    c = _cost(nn.MaxPool2d(3, 2, 1), "2x4x9x9", mode=mode)
    assert (c.macs, c.flops) == (0, 1152)
    # written: 200 values * 4 + 200 int64 indices * 8 = 2400; read 648*4 = 2592
    assert (c.bytes_read, c.bytes_written) == (2592, 2400)


def test_avg_pool2d_padded_and_count_include_pad() -> None:
    # same windows: K-1 adds + 1 divide = K per output: 8 * 13*13 = 1352, either divisor
    assert _cost(nn.AvgPool2d(3, 2, 1), "2x4x9x9").flops == 1352
    assert _cost(nn.AvgPool2d(3, 2, 1, count_include_pad=False), "2x4x9x9").flops == 1352
    assert _cost(nn.AvgPool2d(3, 2, 1, divisor_override=5), "2x4x9x9").flops == 1352
    # no padding: 2x4x8x8, k2 -> 4x4: 8*16 outputs * 4 = 512
    assert _cost(nn.AvgPool2d(2), "2x4x8x8").flops == 512


def test_ceil_mode() -> None:
    # 1x1x5x5, k2 s2 ceil -> 3x3; covered per dim 2+2+1 = 5 -> 25 elements
    # max: 25 - 9 outputs = 16 compares; avg: 25
    assert _cost(nn.MaxPool2d(2, 2, ceil_mode=True), "1x1x5x5").flops == 16
    assert _cost(nn.AvgPool2d(2, 2, ceil_mode=True), "1x1x5x5").flops == 25


def test_dilated_max_pool() -> None:
    # 1x1x7x7, k3 dilation 2 stride 1 -> 3x3, full windows: 9 * (9 - 1) = 72
    assert _cost(nn.MaxPool2d(3, 1, dilation=2), "1x1x7x7").flops == 72


def test_1d_and_3d() -> None:
    # max_pool1d k3 on 2x4x9 -> 3 outputs per plane, 8 planes: 24 * (3 - 1) = 48
    assert _cost(lambda x: F.max_pool1d(x, 3), "2x4x9").flops == 48
    # avg_pool1d k3: 24 * 3 = 72
    assert _cost(lambda x: F.avg_pool1d(x, 3), "2x4x9").flops == 72
    # max_pool3d k2 on 1x2x4x4x4 -> 2x2x2: 16 outputs * (8 - 1) = 112; avg 16 * 8 = 128
    assert _cost(nn.MaxPool3d(2), "1x2x4x4x4").flops == 112
    assert _cost(nn.AvgPool3d(2), "1x2x4x4x4").flops == 128


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_adaptive_pools(mode: str) -> None:
    # 2x4x9x7 -> 4x3: H windows 3,3,3,3 (sum 12), W windows 3,3,3 (sum 9)
    # avg: 8 planes * 12 * 9 = 864; max: 864 - 8*12 outputs = 768
    assert _cost(nn.AdaptiveAvgPool2d((4, 3)), "2x4x9x7", mode=mode).flops == 864
    assert _cost(nn.AdaptiveMaxPool2d((4, 3)), "2x4x9x7", mode=mode).flops == 768


def test_adaptive_uneven_1d_3d() -> None:
    # 1x1x5 -> 3: windows 2, 3, 2 -> avg 7, max 7 - 3 = 4
    assert _cost(nn.AdaptiveAvgPool1d(3), "1x1x5").flops == 7
    assert _cost(nn.AdaptiveMaxPool1d(3), "1x1x5").flops == 4
    # 1x1x3x3x3 -> 2x2x2: windows 2, 2 per dim (sum 4): avg 4^3 = 64; max 64 - 8 = 56
    assert _cost(nn.AdaptiveAvgPool3d(2), "1x1x3x3x3").flops == 64
    assert _cost(nn.AdaptiveMaxPool3d(2), "1x1x3x3x3").flops == 56


def test_fractional_max_pool() -> None:
    # kernel 2x2, output 4x4, 2 planes: 32 outputs * (4 - 1) = 96 (plus the random draw)
    r = modelmeter.analyze(nn.FractionalMaxPool2d(2, output_size=4), "1x2x9x9")
    assert r.by_operator()["aten.fractional_max_pool2d"].cost.flops == 96


def test_max_unpool_moves_bytes_only() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y, i = F.max_pool2d(x, 2, return_indices=True)
        return F.max_unpool2d(y, i, 2)

    c = modelmeter.analyze(fn, "1x2x4x4").by_operator()["aten.max_unpool2d"].cost
    # reads y 8 floats + 8 int64 indices = 32 + 64; writes the 1x2x4x4 output = 128
    assert (c.flops, c.bytes_read, c.bytes_written) == (0, 96, 128)


def test_lp_pool_decomposes_into_counted_ops() -> None:
    r = modelmeter.analyze(nn.LPPool2d(2, 3), "1x2x9x9")
    assert not r.unsupported
    # its avg_pool2d part: 2 planes * 3x3 outputs * 9 = 162
    assert r.by_operator()["aten.avg_pool2d"].cost.flops == 162


def test_global_pool_onnx() -> None:
    x, out = TensorMeta((2, 3, 4, 4)), TensorMeta((2, 3, 1, 1))
    for name, flops in (("GlobalAveragePool", 6 * 16), ("GlobalMaxPool", 6 * 15)):
        f = lookup("onnx", name)
        assert isinstance(f, Formula)
        assert f(OpCall(name, {}, (x,), (out,))).flops == flops
    # ONNX MaxPool with kernel_shape/strides/pads (begin, end): same as test_max_pool2d_padded
    f = lookup("onnx", "MaxPool")
    assert isinstance(f, Formula)
    args = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    call = OpCall("MaxPool", args, (TensorMeta((2, 4, 9, 9)),), (TensorMeta((2, 4, 5, 5)),))
    assert f(call).flops == 1152


def test_covered_total_counts_border_windows_only() -> None:
    import random

    from modelmeter.ops.pool import covered_lengths, covered_total

    # size 5, kernel 3, stride 1, pad 1: windows cover 2,3,3,3,2 elements = 13
    assert covered_total(5, 5, 3, 1, 1) == sum(covered_lengths(5, 5, 3, 1, 1)) == 13
    rng = random.Random(0)
    for _ in range(2000):
        size, kernel, stride = rng.randint(1, 30), rng.randint(1, 7), rng.randint(1, 4)
        pad, dil, out = rng.randint(0, 5), rng.randint(1, 3), rng.randint(0, 20)
        assert covered_total(size, out, kernel, stride, pad, dil) == sum(
            covered_lengths(size, out, kernel, stride, pad, dil)
        )
    # a 2**31-wide input: 2**31 - 2 interior windows of 3 = 6,442,450,938, without a loop
    assert covered_total(2**31, 2**31 - 2, 3, 1, 0) == 3 * (2**31 - 2)


# Found in review: pooling: the gradients that have no decomposition (average, adaptive, 3-d
# max, adaptive max, fractional max).


class _Pool(nn.Module):
    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> object:
        return self.fn(x * self.w)


@pytest.mark.parametrize(
    ("fn", "shape", "op", "flops"),
    [
        # avg_pool2d(3, 2, 1) on (1, 2, 8, 8) -> 4x4: windows cover 2, 3, 3, 3 rows (and
        # columns): 11*11 = 121 per plane, 242 elements ; + 32 divides -> 274
        (lambda x: F.avg_pool2d(x, 3, 2, 1), "1x2x8x8", "avg_pool2d_backward", 242 + 32),
        # avg_pool3d(2) on (1, 2, 4, 4, 4): 16 outputs of 8 = 128 adds + 16 divides = 144
        (lambda x: F.avg_pool3d(x, 2), "1x2x4x4x4", "avg_pool3d_backward", 144),
        # adaptive avg 7 -> 3: windows [0,3), [2,5), [4,7): 3 each -> 9*9 = 81 per plane,
        # 162 adds + 18 divides = 180
        (lambda x: F.adaptive_avg_pool2d(x, 3), "1x2x7x7", "_adaptive_avg_pool2d_backward", 180),
        # max_pool3d(2) on (1, 2, 4, 4, 4): 16 output gradients, 1 add each
        (lambda x: F.max_pool3d(x, 2), "1x2x4x4x4", "max_pool3d_with_indices_backward", 16),
        # adaptive max 7 -> 3 on 2 planes: 18 output gradients
        (lambda x: F.adaptive_max_pool2d(x, 3), "1x2x7x7", "adaptive_max_pool2d_backward", 18),
    ],
)
def test_pooling_gradients(kit, fn: Callable, shape: str, op: str, flops: int) -> None:  # noqa: ANN001
    for mode in ("meta", "real"):
        r = kit.run(_Pool(fn), shape, mode=mode, backward=True)
        assert r.by_operator("backward")[f"aten.{op}"].cost.flops == flops


def test_pooling_gradient_bytes_skip_self(kit) -> None:  # noqa: ANN001
    r = kit.run(_Pool(lambda x: F.avg_pool2d(x, 2)), "1x2x8x8", backward=True)
    c = r.by_operator("backward")["aten.avg_pool2d_backward"].cost
    # 32 outputs of 4: 128 adds + 32 divides = 160 ; reads grad_output 32*4 = 128 B (self
    # only gives the shape) ; writes the (1, 2, 8, 8) gradient 512 B
    assert c == Cost(0, 160, 128, 512, 0)
    r = kit.run(_Pool(lambda x: F.adaptive_max_pool2d(x, 2)), "1x2x8x8", backward=True)
    c = r.by_operator("backward")["aten.adaptive_max_pool2d_backward"].cost
    # 8 output gradients: 8 adds ; reads grad_output 32 B + int64 indices 64 B = 96
    assert c == Cost(0, 8, 96, 512, 0)
