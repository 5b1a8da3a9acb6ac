"""Review of pooling: the gradients that have no decomposition (average, adaptive, 3-d max,
adaptive max, fractional max)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelmeter.report import Cost


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
