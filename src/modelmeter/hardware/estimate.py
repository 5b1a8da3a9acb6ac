"""Attainable figures for a chip nobody measured, carried over from a measured chip of the same
family (``bench/estimate_attainable.py`` writes them into the built-in spec files; the rule is
in docs/hardware.md, "Attainable figures").

For a target chip T and a measured chip M (both with their datasheet figures):

* matrix peak per dtype D:  T's datasheet peak for D x (M's attainable / M's datasheet), for
  every D both have a peak of their own (float32 MACs: the vector.float32 peak on chips without
  TF32 by default);
* copy bandwidth:           T's datasheet bandwidth x (M's attainable / M's datasheet);
* vector peaks:             T's datasheet vector.float32 peak x (M's attainable vector figure /
  M's datasheet vector.float32 peak), for every dtype M's section gives (PyTorch's
  half-precision elementwise kernels compute in float32: the FP32 units' rate); none where T
  has no vector.float32 peak;
* per-op host time, per-module-call host time, per-kernel launch times, per-class efficiencies
  and the depthwise kernel-size exponents: M's, unchanged (the same eager framework on a
  server host; the same libraries' kernels).
"""

from __future__ import annotations

from modelmeter.hardware.attainable import Attainable
from modelmeter.hardware.spec import HardwareSpec


def own_matrix_peak(spec: HardwareSpec, dtype: str) -> float | None:
    """The datasheet's matrix peak for MACs in ``dtype`` where the chip has one of its own:
    ``compute[dtype]``, or for float32 the vector.float32 peak (PyTorch's default: no TF32);
    None where an op in ``dtype`` would fall back to another dtype's figure."""
    if dtype in spec.compute:
        return spec.compute[dtype]
    if dtype == "float32" and "float32" in spec.vector:
        return spec.vector["float32"]
    return None


def carry_over(measured: HardwareSpec, target: HardwareSpec, *, uncertainty: str) -> Attainable:
    """``target``'s estimated attainable figures from ``measured``'s (module docstring)."""
    att = measured.attainable
    if att is None:
        raise ValueError(f"{measured.name} has no [attainable] figures to carry over")
    compute: dict[str, float] = {}
    for dtype, value in att.compute.items():
        mine, theirs = own_matrix_peak(measured, dtype), own_matrix_peak(target, dtype)
        if mine and theirs:
            compute[dtype] = _round(theirs * value / mine)
    bandwidth = _round(target.bandwidth * (att.bandwidth or measured.bandwidth)
                       / measured.bandwidth)
    vector = {}
    mine_fp32, theirs_fp32 = measured.vector.get("float32"), target.vector.get("float32")
    if mine_fp32 and theirs_fp32:
        vector = {d: _round(theirs_fp32 * value / mine_fp32) for d, value in att.vector.items()}
    return Attainable(
        basis="estimated",
        source=f"carried over from {measured.name}'s measured figures "
        "(hardware/estimate.py; docs/hardware.md)",
        uncertainty=uncertainty,
        bandwidth=bandwidth,
        compute=compute,
        vector=vector,
        kernel_overhead=att.kernel_overhead,
        launch_overhead=att.launch_overhead,
        launch_classes=att.launch_classes,
        module_call=att.module_call,
        dtype_overhead=dict(att.dtype_overhead),
        runtime_overhead=dict(att.runtime_overhead),
        kernel_efficiency=dict(att.kernel_efficiency),
        kernel_memory=dict(att.kernel_memory),
        dtype_kernels={d: dict(t) for d, t in att.dtype_kernels.items()},
        depthwise_taps=dict(att.depthwise_taps),
    )


def _round(x: float) -> float:
    """Four significant figures (what a spec file shows)."""
    return float(f"{x:.4g}")


__all__ = ["carry_over", "own_matrix_peak"]
