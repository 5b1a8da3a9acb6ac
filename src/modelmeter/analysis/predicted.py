"""The roofline's prediction beside what was measured: for the whole model
(:class:`Prediction`) and for each hooked module (:class:`ModuleTiming`). Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from modelmeter.analysis.roofline import Roofline, roofline
from modelmeter.analysis.timings import Timings, TimingStats, timing_stats
from modelmeter.report import Report


@dataclass(frozen=True, slots=True)
class Prediction:
    """The roofline's latency for the measured model on a chip, and the FLOPs-only estimate
    (total FLOPs over the matrix peak of the model's main dtype)."""

    hardware: str
    latency_s: float
    compute_s: float
    memory_s: float
    overhead_s: float
    bound: str
    kernels: int
    flops_only_s: float
    peak: float
    bandwidth: float
    kernel_overhead_s: float
    launches_overlap: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.hardware,
            "latency_s": self.latency_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "overhead_s": self.overhead_s,
            "bound": self.bound,
            "kernels": self.kernels,
            "flops_only_s": self.flops_only_s,
            "peak_flops_per_s": self.peak,
            "bandwidth": self.bandwidth,
            "kernel_overhead_s": self.kernel_overhead_s,
            "launches_overlap": self.launches_overlap,
        }


@dataclass(frozen=True, slots=True)
class ModuleTiming:
    """One module's measured time per forward (its subtree, hooks on) and its prediction."""

    name: str
    type: str
    depth: int
    calls: int
    measured: TimingStats
    flops: int
    predicted_s: float | None = None

    @property
    def ratio(self) -> float | None:
        """predicted / measured (None without a prediction or a measurement)."""
        if self.predicted_s is None or not self.measured.median:
            return None
        return self.predicted_s / self.measured.median

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "calls": self.calls,
            "flops": self.flops,
            "measured": self.measured.to_dict(),
            "predicted_s": self.predicted_s,
            "ratio": self.ratio,
        }


def prediction(roof: Roofline, flops: int) -> Prediction:
    """The roofline's latency of the measured model, beside the FLOPs-only estimate."""
    spec, t = roof.spec, roof.total
    return Prediction(
        hardware=spec.name,
        latency_s=t.latency_s,
        compute_s=t.compute_s,
        memory_s=t.memory_s,
        overhead_s=t.overhead_s,
        bound=t.bound,
        kernels=t.kernels,
        flops_only_s=flops / roof.peak if roof.peak else math.inf,
        peak=roof.peak,
        bandwidth=spec.bandwidth,
        kernel_overhead_s=spec.host_overhead(roof.dtype, roof.runtime),
        launches_overlap=spec.launches_overlap,
    )


def module_timings(
    timings: Timings, report: Report, roof: Roofline | None
) -> list[ModuleTiming]:
    """Each hooked module's measured time beside its roofline time."""
    if not timings.module_samples:
        return []
    if roof is not None and roof.spec.launches_overlap:
        # the hooks synchronise around every module, so no launch overlaps execution there:
        # compare module times with the roofline that pays every launch
        roof = roofline(
            report, replace(roof.spec, overlap=False), phase=roof.phase, tf32=roof.tf32,
            runtime=roof.runtime,
        )
    modules: list[ModuleTiming] = []
    for node in report.modules():
        samples = timings.module_samples.get(node.name)
        if not samples:
            continue
        predicted = None
        if roof is not None and node.name in roof.modules:
            predicted = roof.modules[node.name].latency_s
        modules.append(
            ModuleTiming(
                name=node.name,
                type=node.type,
                depth=node.depth,
                calls=node.calls,
                measured=timing_stats(samples),
                flops=node.total_cost("forward").flops,
                predicted_s=predicted,
            )
        )
    return modules


__all__ = ["ModuleTiming", "Prediction", "module_timings", "prediction"]
