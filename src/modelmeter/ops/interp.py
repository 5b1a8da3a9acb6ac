"""Interpolation (``F.interpolate`` / ``nn.Upsample``): nearest, linear, bilinear, bicubic,
trilinear and the antialiased bilinear/bicubic variants.

``mode="area"`` runs ``_adaptive_avg_pool*`` (pooling family). Weights and source indices
depend only on the output coordinate along each axis and are computed once per axis
(shared by all N*C planes and the other axes); they are index arithmetic and not counted.

Per output element PyTorch's kernel evaluates, dimension by dimension, a weighted sum over k
taps of the (recursively interpolated) values: ``sum_j t_j * w_j`` = k multiplies + k-1 adds.
So F(1 axis) = 2k - 1 and F(n axes) = k * F(n-1 axes) + 2k - 1:

- nearest / nearest-exact (k = 1): 0, bytes only;
- linear (k = 2): 3 (one lerp ``t0*w0 + t1*w1``);
- bilinear: 2*3 + 3 = 9 (three lerps; the 7 often quoted assumes the four corner weights
  ``wh*ww`` precomputed per output pixel, which the channels-first kernel does not do);
- trilinear: 2*9 + 3 = 21 (seven lerps);
- bicubic (k = 4): 4*7 + 7 = 35 (four 4-tap row sums, one 4-tap column sum).
"""

from __future__ import annotations

import math
import struct

from modelmeter.registry import OpCall, Work, register_op


def nested_tap_flops(taps: int, axes: int) -> int:
    """FLOPs per output of a k-tap interpolation over ``axes`` axes, nested as PyTorch does."""
    flops = 0
    for _ in range(axes):
        flops = taps * flops + 2 * taps - 1
    return flops


@register_op(
    "upsample_nearest",
    aten=[
        "upsample_nearest1d",
        "upsample_nearest2d",
        "upsample_nearest3d",
        "_upsample_nearest_exact1d",
        "_upsample_nearest_exact2d",
        "_upsample_nearest_exact3d",
    ],
)
def upsample_nearest(call: OpCall) -> Work:
    """Nearest-neighbour resize: a gather, 0 FLOPs; reads the input, writes the output."""
    return Work(flops=0)


_TAPS_AXES = {
    "upsample_linear1d": (2, 1),
    "upsample_bilinear2d": (2, 2),
    "upsample_trilinear3d": (2, 3),
    "upsample_bicubic2d": (4, 2),
}


@register_op("upsample_linear", aten=list(_TAPS_AXES))
def upsample_linear(call: OpCall) -> Work:
    """Linear-family resize, per output element: linear 3, bilinear 9, trilinear 21,
    bicubic 35 (k taps per axis, nested: F(n) = k*F(n-1) + 2k - 1, F(0) = 0; each k-tap
    weighted sum is k multiplies and k-1 adds). ``align_corners`` changes the weights only.
    FLOPs = out.numel * F."""
    taps, axes = _TAPS_AXES[call.op]
    return Work(flops=call.out.numel * nested_tap_flops(taps, axes))


@register_op("resize", onnx=["Resize", "Upsample"])
def resize(call: OpCall) -> Work:
    """ONNX Resize: nearest 0, linear k=2, cubic k=4 taps per resized axis, nested as in
    ``upsample_linear`` (F(n) = k*F(n-1) + 2k - 1) over the axes whose size changes."""
    mode = str(call.arg("mode", "nearest"))
    taps = {"nearest": 1, "linear": 2, "cubic": 4}.get(mode, 1)
    x, out = call.inputs[0], call.out
    axes = sum(1 for a, b in zip(x.shape, out.shape) if a != b)
    return Work(flops=out.numel * nested_tap_flops(taps, axes) if taps > 1 else 0)


# ---- antialiased (separable) -----------------------------------------------------------------


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _scale(size: int, out: int, align_corners: bool, scale: float | None) -> float:
    """PyTorch's area_pixel_compute_scale."""
    if align_corners:
        return (size - 1) / (out - 1) if out > 1 else 0.0
    if scale is not None and scale > 0:
        return 1.0 / scale
    return size / out


def aa_taps(
    size: int,
    out: int,
    interp_size: int,
    align_corners: bool = False,
    scale: float | None = None,
    single: bool = True,
) -> list[int]:
    """Taps per output of PyTorch's antialiased resampling along one axis: the filter support
    is ``interp_size/2`` input pixels, widened by the scale when downsampling; output i reads
    input [xmin, xmin + xsize) with ``center = scale*(i + 0.5)``, ``xmin = max(int(center -
    support + 0.5), 0)``, ``xsize = min(int(center + support + 0.5), size) - xmin``.
    ``single``: emulate float32 arithmetic as the kernel does for float32/16 inputs."""
    r = _f32 if single else float
    s = r(_scale(size, out, align_corners, scale))
    support = r((interp_size * 0.5) * s) if s >= 1.0 else r(interp_size * 0.5)
    max_taps = math.ceil(support) * 2 + 1
    taps = []
    for i in range(out):
        center = r(s * (i + 0.5))
        xmin = max(int(r(center - support) + 0.5), 0)
        xsize = min(int(r(center + support) + 0.5), size) - xmin
        taps.append(min(max(xsize, 0), max_taps))
    return taps


@register_op("upsample_aa", aten=["_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"])
def upsample_aa(call: OpCall) -> Work:
    """Antialiased bilinear (filter support 2) / bicubic (support 4) resize, computed by
    PyTorch as separable passes: first along W (N*C*H_in*W_out outputs), then along H
    (N*C*H_out*W_out outputs); an axis whose size does not change is skipped. An output with
    t taps costs t multiplies + t-1 adds, so a pass costs (other elements) * sum_i (2*t_i - 1),
    with t_i given by :func:`aa_taps` (about 2*scale or 4*scale taps when downsampling by
    ``scale``, 2 or 4 when upsampling)."""
    x, out = call.inputs[0], call.out
    interp = 4 if "bicubic" in call.op else 2
    align = bool(call.arg("align_corners", False))
    single = x.dtype != "float64"
    *lead, h_in, w_in = x.shape
    h_out, w_out = out.shape[-2:]
    planes = math.prod(lead)
    flops = 0
    if w_out != w_in:
        taps = aa_taps(w_in, w_out, interp, align, call.arg("scales_w"), single)
        flops += planes * h_in * sum(2 * t - 1 for t in taps)
    if h_out != h_in:
        taps = aa_taps(h_in, h_out, interp, align, call.arg("scales_h"), single)
        flops += planes * w_out * sum(2 * t - 1 for t in taps)
    return Work(flops=flops)
