"""Review of resampling: grid_sample (2-d and 3-d, as one op) and the gradients of resizing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


@pytest.mark.parametrize(
    ("kw", "flops"),
    [
        # x (1, 3, 8, 8), grid (1, 5, 5, 2): 25 locations, 75 outputs.
        # bilinear, zeros, align_corners=False: per coordinate unnormalise 3 + floor,
        # fraction, complement 3 = 6 -> 12 ; corner weights 4 ; tap bounds 8 compares + 4 ands
        # = 12 -> 28 per location = 700 ; 7 per output = 525 -> 1225
        ({}, 1225),
        # border padding: + 2 clips per coordinate, no tap bounds: 12 + 4 + 4 = 20 -> 500 + 525
        ({"padding_mode": "border"}, 1025),
        # reflection: + 10 per coordinate, no bounds: (6 + 10)*2 + 4 = 36 -> 900 + 525
        ({"padding_mode": "reflection"}, 1425),
        # align_corners=True: unnormalise 2: 28 - 2 = 26 -> 650 + 525
        ({"align_corners": True}, 1175),
        # nearest: unnormalise 3 + round 1 = 4 per coordinate -> 8 ; bounds 4 + 1 = 5 -> 13
        # per location = 325 ; 0 per output
        ({"mode": "nearest"}, 325),
        # bicubic: (3 + 27)*2 = 60 ; bounds 16 + 16 = 32 -> 92 per location = 2300 ;
        # 35 per output = 2625 -> 4925
        ({"mode": "bicubic"}, 4925),
    ],
)
def test_grid_sample_2d(kit, kw: dict, flops: int) -> None:  # noqa: ANN001
    kw.setdefault("align_corners", False)
    for mode in ("meta", "real"):
        r = kit.run(lambda x, g: F.grid_sample(x, g, **kw), "1x3x8x8", "1x5x5x2", mode=mode)
        assert list(r.by_operator()) == ["aten.grid_sampler_2d"]
        c = r.total().cost
        # reads x 768 + grid 200 B, writes (1, 3, 5, 5) 300 B
        assert (c.flops, c.bytes_read, c.bytes_written) == (flops, 968, 300)


def test_grid_sample_3d(kit) -> None:  # noqa: ANN001
    # x (1, 3, 4, 4, 4), grid (1, 2, 2, 2, 3): 8 locations, 24 outputs. trilinear, zeros:
    # per coordinate 3 + 3 = 6 -> 18 ; corner weights 12 ; bounds 12 + 16 = 28 -> 58 per
    # location = 464 ; 15 per output (8 multiplies + 7 adds) = 360 -> 824
    for mode in ("meta", "real"):
        r = kit.run(
            lambda x, g: F.grid_sample(x, g, align_corners=False),
            "1x3x4x4x4",
            "1x2x2x2x3",
            mode=mode,
        )
        assert r.total().cost.flops == 824


class _Resize(nn.Module):
    def __init__(self, **kw: object) -> None:
        super().__init__()
        self.kw = kw
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x * self.w, **self.kw)


@pytest.mark.parametrize(
    ("shape", "kw", "op", "flops"),
    [
        # nearest 2x of (1, 2, 4, 4): 128 output gradients, 1 add each
        ("1x2x4x4", {"scale_factor": 2}, "upsample_nearest2d_backward", 128),
        (
            "1x2x4x4",
            {"scale_factor": 2, "mode": "nearest-exact"},
            "_upsample_nearest_exact2d_backward",
            128,
        ),
        # linear (k = 2, 1 axis): 2 multiplies + 2 adds = 4 per output gradient, 16 -> 64
        ("1x2x4", {"scale_factor": 2, "mode": "linear"}, "upsample_linear1d_backward", 64),
        # bilinear: B(2) = 2*(B(1) + 1) = 2*5 = 10 per output gradient -> 1280
        ("1x2x4x4", {"scale_factor": 2, "mode": "bilinear"}, "upsample_bilinear2d_backward", 1280),
        # bicubic: B(1) = 4*2 = 8, B(2) = 4*(8 + 1) = 36 -> 4608
        ("1x2x4x4", {"scale_factor": 2, "mode": "bicubic"}, "upsample_bicubic2d_backward", 4608),
        # trilinear: B(3) = 2*(10 + 1) = 22 per output of (1, 2, 8, 8, 8) = 1024 -> 22528
        (
            "1x2x4x4x4",
            {"scale_factor": 2, "mode": "trilinear"},
            "upsample_trilinear3d_backward",
            22528,
        ),
    ],
)
def test_resize_gradients(kit, shape: str, kw: dict, op: str, flops: int) -> None:  # noqa: ANN001
    for mode in ("meta", "real"):
        r = kit.run(_Resize(**kw), shape, mode=mode, backward=True)
        assert r.by_operator("backward")[f"aten.{op}"].cost.flops == flops


def test_antialiased_resize_gradient(kit) -> None:  # noqa: ANN001
    # bilinear antialias 8x8 -> 3x3, scale 8/3: support 8/3 input pixels; output i reads
    # [int(c - 8/3 + 0.5), int(c + 8/3 + 0.5)) clipped to [0, 8), c = (i + 0.5)*8/3:
    # [0, 4), [1, 7), [4, 8) -> 4, 6, 4 taps along each axis.
    # Backward: H pass over W_out = 3 columns per plane: 2*(4 + 6 + 4) = 28 each ->
    # 2 planes * 3 * 28 = 168 ; W pass over H_in = 8 rows: 2 * 8 * 28 = 448 -> 616
    from modelmeter.ops.interp import aa_taps

    assert aa_taps(8, 3, 2) == [4, 6, 4]
    r = kit.run(_Resize(size=(3, 3), mode="bilinear", antialias=True), "1x2x8x8", backward=True)
    assert r.by_operator("backward")["aten._upsample_bilinear2d_aa_backward"].cost.flops == 616
