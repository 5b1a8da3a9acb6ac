"""Plausibility checks on a calibration's figures: warnings for figures that no idle device
gives, whatever the spread between rounds.

The stability check (``calibrate._unstable``) compares the rounds of one figure; on a busy
machine every round can be equally slow, so it says nothing. These checks compare figures
with each other instead:

* the vector rate below ``VECTOR_FLOOR`` (1%) of the float32 matmul rate: an elementwise
  kernel streams memory while a matmul computes, but no device is 100x slower at the
  first (bench/results/h100-calibrated.toml: float32 3.13 T against 51.6 T, 6%; bfloat16
  5.86 T, 11% of float32's matmul; the 2-core VM about 18 G against 200 G, 9%). Tensor
  cores make a low-precision matmul 15x float32's (the H100's bfloat16 vector rate is 0.7%
  of its bfloat16 matmul), so the reference is float32's matmul; without one, the dtype's
  own at a tenth of the floor;
* the vector rate below ``VECTOR_PER_BYTE`` (0.05) FLOP per byte of the copy bandwidth:
  the calibration's elementwise ops (an add; a tanh GELU, 9 FLOPs per element) ran at 0.4
  to 0.55 FLOP per copied byte on the idle 2-core VM and 1.04 on the H100 (3.13 T against
  3.0 TB/s); a busy run of the VM gave 0.012 (0.199 G against 16.8 GB/s);
* the matmul rate below what the copy bandwidth implies for the calibration's own square
  matmul: ``min(BALANCE, n / (1.5 x bytes per element)) x bandwidth``. The square matmul of
  n does ``2 n^3`` FLOPs over at least ``3 n^2`` elements (``n / (1.5 x size)`` FLOP per
  byte), so it is compute-bound; and devices compute more FLOPs in the time they copy a
  byte (the H100 above 17 in float32; the 2-core VM 2.5 to 6 in docs/measure.md's quiet
  runs; a busy run 1.0: 16.9 G against 16.8 GB/s). Under ``BALANCE`` (1.5) FLOP per copied
  byte the matmul ran slower than an idle device computes;
* the host-time fit (``calibrate_host``) clamped to 0: the measured decode steps did not
  grow with the module calls, or ran faster than their ops' own issue times.

Each warning says the figure and why it looks wrong; the CLI adds what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelmeter.units import dtype_bytes

VECTOR_FLOOR = 0.01  # vector FLOP/s below this share of the matmul's: a busy device
BALANCE = 1.5  # FLOP per copied byte a square matmul should reach at least
VECTOR_PER_BYTE = 0.05  # FLOP per copied byte the vector rate should reach at least


def _si(rate: float) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
        if rate >= scale:
            return f"{rate / scale:.3g} {prefix}"
    return f"{rate:.3g} "


def rate_warnings(matmul: Mapping[str, float], vector: Mapping[str, float], bandwidth: float,
                  sizes: Mapping[str, int]) -> list[str]:
    """Warnings for the measured ceilings (see the module docstring): ``sizes`` the square
    matmul's n per dtype."""
    out = []
    for dtype, vec in vector.items():
        ref = "float32" if "float32" in matmul else dtype
        rate = matmul.get(ref, 0.0)
        floor = VECTOR_FLOOR if ref == "float32" else VECTOR_FLOOR / 10
        if rate > 0 and vec < floor * rate:
            out.append(f"vector {dtype} {_si(vec)}FLOP/s is {vec / rate:.2%} of the {ref} "
                       f"matmul's {_si(rate)}FLOP/s (below {floor:.1%}: elementwise kernels "
                       f"are not that much slower than a matmul on an idle device)")
        if bandwidth > 0 and vec < VECTOR_PER_BYTE * bandwidth:
            out.append(f"vector {dtype} {_si(vec)}FLOP/s is {vec / bandwidth:.2g} FLOP per byte "
                       f"of the {_si(bandwidth)}B/s copy bandwidth (below {VECTOR_PER_BYTE:g}: "
                       f"idle devices run the calibration's elementwise ops at 0.4 to 1)")
    for dtype, rate in matmul.items():
        n = sizes.get(dtype, 0)
        if n <= 0 or bandwidth <= 0:
            continue
        per_byte = min(BALANCE, n / (1.5 * dtype_bytes(dtype)))
        if rate < per_byte * bandwidth:
            out.append(f"matmul {dtype} {_si(rate)}FLOP/s is {rate / bandwidth:.2g} FLOP per "
                       f"byte of the {_si(bandwidth)}B/s copy bandwidth (below "
                       f"{per_byte:.3g}: a square matmul of n={n} is compute-bound, and "
                       f"idle devices compute more FLOPs in the time they copy a byte)")
    return out


def host_warnings(module_raw: float, step_raw: float) -> list[str]:
    """Warnings for a host-time fit clamped to 0: ``module_raw`` and ``step_raw`` the
    fitted figures before clamping (seconds)."""
    out = []
    if module_raw < 0:
        out.append(f"module_call fitted {module_raw * 1e6:.3g}us, written as 0: the deeper "
                   f"tiny Llama's decode step did not take longer per module call than the "
                   f"shallower one's")
    if step_raw < 0:
        out.append(f"step fitted {step_raw * 1e6:.3g}us, written as 0: the decode step "
                   f"measured less than its ops' predicted issue times (the per-op overhead "
                   f"was timed on a busier machine than the steps)")
    return out


__all__ = ["BALANCE", "VECTOR_FLOOR", "VECTOR_PER_BYTE", "host_warnings", "rate_warnings"]
