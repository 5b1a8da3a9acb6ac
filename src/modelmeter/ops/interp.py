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
    family="interp",
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


@register_op("upsample_linear", family="interp", aten=list(_TAPS_AXES))
def upsample_linear(call: OpCall) -> Work:
    """Linear-family resize, per output element: linear 3, bilinear 9, trilinear 21,
    bicubic 35 (k taps per axis, nested: F(n) = k*F(n-1) + 2k - 1, F(0) = 0; each k-tap
    weighted sum is k multiplies and k-1 adds). ``align_corners`` changes the weights only.
    FLOPs = out.numel * F."""
    taps, axes = _TAPS_AXES[call.op]
    return Work(flops=call.out.numel * nested_tap_flops(taps, axes))


@register_op("resize", family="interp", onnx=["Resize", "Upsample"])
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


@register_op(
    "upsample_aa", family="interp", aten=["_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"]
)
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


# ---- grid sampling -------------------------------------------------------------------------

# grid_sampler_* ``interpolation_mode`` and ``padding_mode`` codes
_BILINEAR, _NEAREST, _BICUBIC = 0, 1, 2
_ZEROS, _BORDER, _REFLECTION = 0, 1, 2
_PADDING_PER_COORD = {_ZEROS: 0, _BORDER: 2, _REFLECTION: 10}


@register_op("grid_sampler", family="interp", aten=["grid_sampler_2d", "grid_sampler_3d"])
def grid_sampler(call: OpCall) -> Work:
    """``F.grid_sample``, counted as PyTorch's CPU kernel computes it: per output element
    (each channel) the weighted sum of the taps (bilinear 7, trilinear 15, bicubic 35,
    nearest 0), plus per output location (N x output spatial) the coordinates, weights and
    tap bounds, which depend on the grid's data and so are computed per location (2-d
    bilinear, zeros padding, align_corners=False: 28; details below).

    Per location and coordinate (2 in 2-d, 3 in 3-d): unnormalise ``(g + 1)*f`` (2 with
    ``align_corners``, else ``- 0.5`` too: 3); padding ``border`` clips (2), ``reflection``
    reflects (subtract, abs, fmod, divide, floor, parity select, 2 adds = 8) and clips (2);
    the taps' weights: bilinear floor, fraction, complement (3), bicubic floor, fraction (2)
    and four cubic-convolution coefficients (25), nearest a round (1).
    Per location: bilinear corner weights (2-d 4 products, 3-d 4 + 8 = 12); with ``zeros``
    padding the bounds of every tap (2 compares per tap and axis, axes - 1 ands per tap:
    bilinear 12, trilinear 28, bicubic 32, nearest 2-d 5, 3-d 8).
    Per output element (each channel): the weighted sum of the taps, bilinear 4 multiplies +
    3 adds = 7, trilinear 15, bicubic 35 (four 4-tap row sums and one column sum, as
    ``upsample_bicubic2d``), nearest 0 (a gather)."""
    grid, out = call.inputs[1], call.out
    axes = 3 if "3d" in call.op else 2
    mode = int(call.arg("interpolation_mode", _BILINEAR))
    padding = int(call.arg("padding_mode", _ZEROS))
    locations = grid.numel // axes if axes else 0
    per_coord = (2 if call.arg("align_corners", False) else 3) + _PADDING_PER_COORD.get(
        padding, 0
    )
    if mode == _NEAREST:
        taps, per_coord, corner, per_output = 1, per_coord + 1, 0, 0
    elif mode == _BICUBIC:
        taps, per_coord, corner = 4, per_coord + 27, 0
        per_output = nested_tap_flops(4, axes)
    else:
        taps, per_coord = 2, per_coord + 3
        corner = 4 if axes == 2 else 12
        per_output = 2 * 2**axes - 1
    bounds = 2 * taps * axes + (axes - 1) * taps**axes if padding == _ZEROS else 0
    per_location = axes * per_coord + corner + bounds
    return Work(flops=locations * per_location + out.numel * per_output)


# ---- backward ------------------------------------------------------------------------------
#
# The gradient kernels of resizing zero the input gradient and add every contribution of
# every output gradient into it: each contribution is counted as one add (as for scatter_add
# and the embedding gradient), also where it lands on a zero.


def _backward_sizes(call: OpCall) -> tuple[list[int], list[int], int]:
    """(input spatial sizes, output spatial sizes, planes) of an upsample backward op."""
    grad = call.inputs[0]
    out_size = list(call.arg("output_size", grad.shape[2:]))
    in_size = list(call.arg("input_size", ()))
    k = len(out_size)
    planes = grad.numel // math.prod(out_size) if math.prod(out_size) else 0
    return in_size[-k:], out_size, planes


@register_op(
    "upsample_nearest_backward",
    family="interp",
    aten=[
        "upsample_nearest1d_backward",
        "upsample_nearest2d_backward",
        "upsample_nearest3d_backward",
        "_upsample_nearest_exact1d_backward",
        "_upsample_nearest_exact2d_backward",
        "_upsample_nearest_exact3d_backward",
    ],
)
def upsample_nearest_backward(call: OpCall) -> Work:
    """Gradient of nearest-neighbour resizing: every output gradient is added into the
    input element it copied: 1 add per grad_output element."""
    return Work(flops=call.inputs[0].numel)


_BACKWARD_TAPS_AXES = {f"{op}_backward": v for op, v in _TAPS_AXES.items()}


def nested_tap_backward_flops(taps: int, axes: int) -> int:
    """FLOPs per output gradient of a k-tap interpolation over ``axes`` axes: the gradient is
    split along the first axis (k multiplies by the weights), each part split along the next
    ..., and the k^axes parts added into the input gradient: B(n) = k*(B(n-1) + 1),
    B(0) = 1 (the add)."""
    flops = 1
    for _ in range(axes):
        flops = taps * (flops + 1)
    return flops


@register_op("upsample_linear_backward", family="interp", aten=list(_BACKWARD_TAPS_AXES))
def upsample_linear_backward(call: OpCall) -> Work:
    """Gradient of linear-family resizing, per output gradient: linear 4, bilinear 10,
    trilinear 22, bicubic 36 (k weight multiplies per axis, nested, and k^axes adds into the
    input gradient: B(n) = k*(B(n-1) + 1), B(0) = 1). FLOPs = grad_output.numel * B."""
    taps, axes = _BACKWARD_TAPS_AXES[call.op]
    return Work(flops=call.inputs[0].numel * nested_tap_backward_flops(taps, axes))


@register_op(
    "upsample_aa_backward",
    family="interp",
    aten=["_upsample_bilinear2d_aa_backward", "_upsample_bicubic2d_aa_backward"],
)
def upsample_aa_backward(call: OpCall) -> Work:
    """Gradient of antialiased resizing: the two separable passes in reverse (H, then W);
    an output of a pass with t taps sends t weighted parts back: t multiplies + t adds,
    with the taps of :func:`aa_taps`. FLOPs = planes*W_out*sum_i 2*t_i (H pass, when H
    changes) + planes*H_in*sum_j 2*t_j (W pass, when W changes)."""
    (h_in, w_in), (h_out, w_out), planes = _backward_sizes(call)
    interp = 4 if "bicubic" in call.op else 2
    align = bool(call.arg("align_corners", False))
    single = call.inputs[0].dtype != "float64"
    flops = 0
    if h_out != h_in:
        taps = aa_taps(h_in, h_out, interp, align, call.arg("scales_h"), single)
        flops += planes * w_out * sum(2 * t for t in taps)
    if w_out != w_in:
        taps = aa_taps(w_in, w_out, interp, align, call.arg("scales_w"), single)
        flops += planes * h_in * sum(2 * t for t in taps)
    return Work(flops=flops)
