"""Interpolation formulas: nearest, linear family, bicubic and the antialiased resizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelmeter
from modelmeter.ops.interp import aa_taps, nested_tap_flops


def _cost(fn, shape: str, mode: str = "meta") -> modelmeter.Cost:  # noqa: ANN001
    r = modelmeter.analyze(fn, shape, mode=mode)
    assert not r.unsupported, r.unsupported
    return r.total().cost


def test_nested_tap_flops() -> None:
    # one axis of k taps: k multiplies + k-1 adds; n axes: k*F(n-1) + 2k-1
    assert nested_tap_flops(2, 1) == 3  # linear
    assert nested_tap_flops(2, 2) == 2 * 3 + 3 == 9  # bilinear: 3 lerps
    assert nested_tap_flops(2, 3) == 2 * 9 + 3 == 21  # trilinear: 7 lerps
    assert nested_tap_flops(4, 1) == 7
    assert nested_tap_flops(4, 2) == 4 * 7 + 7 == 35  # bicubic


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_nearest_moves_bytes_only(mode: str) -> None:
    c = _cost(lambda x: F.interpolate(x, scale_factor=2), "2x3x5x6", mode)
    # read 2*3*5*6*4 = 720 bytes, write 2*3*10*12*4 = 2880
    assert (c.flops, c.bytes_read, c.bytes_written) == (0, 720, 2880)
    assert _cost(lambda x: F.interpolate(x, scale_factor=2), "2x3x5").flops == 0
    c3 = _cost(lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), "1x1x2x2x2")
    assert c3.flops == 0


@pytest.mark.parametrize("align", [False, True])
def test_bilinear(align: bool) -> None:
    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=align)

    # 2x3x10x12 = 720 outputs * 9 = 6480
    assert _cost(up, "2x3x5x6").flops == 6480


def test_linear_trilinear_bicubic() -> None:
    def lin(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="linear")

    def tri(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="trilinear")

    def cubic(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(8, 8), mode="bicubic")

    # 2x3x10 = 60 outputs * 3 = 180
    assert _cost(lin, "2x3x5").flops == 180
    # 1x1x4x4x4 = 64 outputs * 21 = 1344
    assert _cost(tri, "1x1x2x2x2").flops == 1344
    # 64 outputs * 35 = 2240 (also when downsampling: per output, not per input)
    assert _cost(cubic, "1x1x4x4").flops == 2240
    assert _cost(cubic, "1x1x16x16").flops == 2240


def test_aa_taps() -> None:
    # downsample 8 -> 4 (scale 2, bilinear support 1*2 = 2): centres 1, 3, 5, 7;
    # [int(c - 2 + .5), min(int(c + 2 + .5), 8)) = [0,3) [1,5) [3,7) [5,8)
    assert aa_taps(8, 4, 2) == [3, 4, 4, 3]
    # upsample 4 -> 8 (scale .5, support 1): centres .25, .75, ..., 3.75
    assert aa_taps(4, 8, 2) == [1, 2, 2, 2, 2, 2, 2, 1]


@pytest.mark.parametrize("interp", [2, 4])
def test_aa_taps_cover_every_tap_torch_uses(interp: int) -> None:
    # The input positions each output depends on (nonzero Jacobian entries) must be among
    # the counted taps; counted taps may exceed them only where the filter weight is 0.
    mode = "bilinear" if interp == 2 else "bicubic"
    for n_in, n_out in ((8, 4), (7, 5), (13, 3), (5, 11), (21, 15)):

        def one_axis(x: torch.Tensor, n_out: int = n_out) -> torch.Tensor:
            return F.interpolate(x, size=(1, n_out), mode=mode, antialias=True)

        x = torch.randn(1, 1, 1, n_in)
        jac = torch.autograd.functional.jacobian(one_axis, x).reshape(n_out, n_in)
        used = [int((row != 0).sum()) for row in jac]
        taps = aa_taps(n_in, n_out, interp)
        assert all(u <= t for u, t in zip(used, taps)), (n_in, n_out, used, taps)
        assert sum(taps) - sum(used) <= n_out  # at most one zero-weight tap per output


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_aa_resize(mode: str) -> None:
    def down(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(4, 4), mode="bilinear", antialias=True)

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(8, 8), mode="bilinear", antialias=True)

    # 8x8 -> 4x4: taps [3,4,4,3] per axis, sum(2t-1) = 5+7+7+5 = 24;
    # W pass 8 rows * 24 = 192, H pass 4 columns * 24 = 96 -> 288
    assert _cost(down, "1x1x8x8", mode).flops == 288
    # 4x4 -> 8x8: taps [1,2,2,2,2,2,2,1], sum(2t-1) = 1 + 6*3 + 1 = 20;
    # W pass 4 rows * 20 = 80, H pass 8 columns * 20 = 160 -> 240
    assert _cost(up, "1x1x4x4", mode).flops == 240

    def only_w(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(8, 4), mode="bilinear", antialias=True)

    # H unchanged: its pass is skipped; 2 planes * 8 rows * 24 = 384
    assert _cost(only_w, "1x2x8x8", mode).flops == 384


def test_aa_bicubic() -> None:
    def down(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(4, 4), mode="bicubic", antialias=True)

    # 8 -> 4, bicubic support 2*2 = 4: centres 1, 3, 5, 7:
    # [0, min(int(5.5), 8)) = 5, [0, 7) = 7, [int(1.5), 8) = 7, [int(3.5), 8) = 5
    assert aa_taps(8, 4, 4) == [5, 7, 7, 5]
    # sum(2t-1) = 9 + 13 + 13 + 9 = 44; W pass 8*44 = 352, H pass 4*44 = 176 -> 528
    assert _cost(down, "1x1x8x8").flops == 528


# Found in review: resampling: grid_sample (2-d and 3-d, as one op) and the gradients of
# resizing.


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
