"""What a calibration's timings mean, for every runtime it calibrates (PyTorch's kernels:
:mod:`modelmeter.hardware.calibrate`; onnxruntime's: :mod:`modelmeter.hardware.
calibrate_ort_kernels`): the measured ceilings as a spec, and a kernel's attainable fraction
of its roofline."""

from __future__ import annotations

from typing import Any

from modelmeter.hardware.spec import HardwareSpec

LOWEST = 0.01  # a fraction below this is a broken measurement, not a kernel


def ceiling_spec(matmul: dict[str, float], vector: dict[str, float],
                 bandwidth: float) -> HardwareSpec:
    """The ceilings just measured as a spec without overheads: the roofline's busy time."""
    return HardwareSpec(name="calibrating", display_name="calibrating", vendor="-",
                        kind="cpu", bandwidth=bandwidth,
                        compute={k: v for k, v in matmul.items() if k != "tfloat32"}
                        or dict(matmul), vector=dict(vector))


def fraction(roofline_s: float, device_s: float) -> float:
    """A kernel's roofline time over its measured device time, within [0.01, 1]."""
    return min(1.0, max(LOWEST, roofline_s / max(device_s, 1e-12)))


def conv_memory_fraction(t: Any, kc: float, device_s: float) -> float:
    """The memory side of convolutions from a memory-heavy 1x1 convolution's roofline times
    ``t`` (an OpTime) and measured ``device_s``, its compute side ``kc`` already known: what
    is left of the time is memory, unless compute alone explains it (then ``kc``)."""
    if t.compute_s / kc < device_s:
        return fraction(t.memory_s, device_s)
    return kc


__all__ = ["LOWEST", "ceiling_spec", "conv_memory_fraction", "fraction"]
