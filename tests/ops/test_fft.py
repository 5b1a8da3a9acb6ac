"""FFT formulas: 5 N log2 N real FLOPs per complex transform of length N, 2.5 N log2 N for
real input or output, one pass per transformed dimension."""

from __future__ import annotations

import pytest
import torch

from modelmeter.report import Cost


@pytest.mark.parametrize(
    ("name", "fn", "shape", "flops"),
    [
        # rfft of 4 rows of 16: 2.5 * 64 * log2 16 = 640
        ("rfft", lambda x: torch.fft.rfft(x), "4x16", 640),
        # fft of a real tensor: r2c 640 + the mirrored half 4*(16 - 9) = 28 negations -> 668
        ("fft_real", lambda x: torch.fft.fft(x), "4x16", 668),
        # norm="ortho": + 2 multiplies per complex output (4*9 = 36) = 72 -> 712
        ("rfft_ortho", lambda x: torch.fft.rfft(x, norm="ortho"), "4x16", 712),
        # rfft2 of (2, 8, 16): last dim 2.5*256*4 = 2560, then the 8-long dim over the half
        # spectrum of 2*8*9 = 144: 5*144*3 = 2160 -> 4720
        ("rfft2", lambda x: torch.fft.rfft2(x), "2x8x16", 4720),
        # a length-12 transform: nominal 2.5*48*log2(12) = 430.2 -> 430, + 4*(12 - 7) = 20
        # mirrored -> 450
        ("fft_nonpow2", lambda x: torch.fft.fft(x), "4x12", 450),
    ],
)
def test_fft_forward(kit, name: str, fn, shape: str, flops: int) -> None:  # noqa: ANN001
    for mode in ("meta", "real"):
        assert kit.run(fn, shape, mode=mode).total().cost.flops == flops, name


def test_complex_transforms_and_inverse(kit) -> None:  # noqa: ANN001
    z = kit.t(2, 8, 16, dtype="complex64")
    # fft2 of a complex (2, 8, 16): 5 * 256 * (3 + 4) = 8960 ; reads and writes 256 * 8 B
    c = kit.cost("_fft_c2c", {"self": z, "dim": [1, 2], "normalization": 0, "forward": True}, z)
    assert c == Cost(0, 8960, 2048, 2048, 0)
    # the inverse scales by 1/N: + 2 per complex output = 512 -> 9472
    args = {"self": z, "dim": [1, 2], "normalization": 2, "forward": False}
    assert kit.cost("_fft_c2c", args, z).flops == 9472
    # irfft to 16 real values per row of 4: 2.5*64*4 = 640 + the 1/n scale 64 -> 704
    half = kit.t(4, 9, dtype="complex64")
    args = {"self": half, "dim": [1], "normalization": 2, "last_dim_size": 16}
    assert kit.cost("_fft_c2r", args, kit.t(4, 16)).flops == 704
    # irfft2 to (8, 16): the 8-long dim over the half spectrum 8*9 = 72: 5*72*3 = 1080,
    # then c2r 2.5*128*4 = 1280 -> 2360
    half2 = kit.t(8, 9, dtype="complex64")
    args = {"self": half2, "dim": [0, 1], "normalization": 0, "last_dim_size": 16}
    assert kit.cost("_fft_c2r", args, kit.t(8, 16)).flops == 2360


def test_spectral_layer_round_trip(kit) -> None:  # noqa: ANN001
    # rfft -> multiply by a complex filter -> irfft, as a global filter layer does
    def layer(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(x)
        filt = torch.complex(w, w)
        return torch.fft.irfft(spec * filt, n=16)

    r = kit.run(layer, "4x16", "9", mode="real")
    ops = r.by_operator()
    # rfft 640 ; (4, 9) complex * (9,) complex: 36 * 6 = 216 ; irfft 640 + 1/n scale 64 = 704
    assert ops["aten._fft_r2c"].cost.flops == 640
    assert ops["aten.mul"].cost.flops == 216
    assert ops["aten._fft_c2r"].cost.flops == 704
