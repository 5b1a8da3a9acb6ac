"""The source document's utilization: achieved operations per second over the chip's peak.

    FLOP utilization = (FLOPs / latency) / peak
    MAC utilization  = (2 x MACs / latency) / peak     (the source document counts one MAC as 2 ops)

``peak`` is the chip's matrix peak for the model's main dtype (the roofline's rule, so an
int8-only NPU gives its int8 peak and says "assumed quantised to int8"). Pure: a function of a
Report, a HardwareSpec and a latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.roofline import main_dtype, roofline
from modelmeter.hardware.quantities import figure_rule
from modelmeter.hardware.schema import HardwareSpecError
from modelmeter.hardware.spec import HardwareSpec, resolve_peak
from modelmeter.report import Report


@dataclass(frozen=True)
class Utilization:
    """Measured (or given) latency against a chip's peak, MAC- and FLOP-based."""

    spec: HardwareSpec
    latency_s: float
    macs: int
    flops: int
    dtype: str
    peak: float
    peak_key: str
    predicted_latency_s: float
    batch: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mac_ops_per_s(self) -> float:
        """2 x MACs / latency: the source document's OP/s, one MAC = one multiply + one add."""
        return 2 * self.macs / self.latency_s

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.latency_s

    @property
    def mac_utilization(self) -> float:
        return self.mac_ops_per_s / self.peak

    @property
    def flop_utilization(self) -> float:
        return self.flops_per_s / self.peak

    @property
    def attainable_utilization(self) -> float:
        """FLOP utilization the roofline predicts (FLOPs / predicted latency / peak)."""
        if not self.predicted_latency_s:
            return 0.0
        return self.flops / self.predicted_latency_s / self.peak

    @property
    def throughput(self) -> float | None:
        """Samples per second at the analysed batch."""
        return None if self.batch is None else self.batch / self.latency_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "hardware": self.spec.name,
            "latency_s": self.latency_s,
            "macs": self.macs,
            "flops": self.flops,
            "dtype": self.dtype,
            "peak_flops_per_s": self.peak,
            "peak_key": self.peak_key,
            "mac_ops_per_s": self.mac_ops_per_s,
            "flops_per_s": self.flops_per_s,
            "mac_utilization": self.mac_utilization,
            "flop_utilization": self.flop_utilization,
            "predicted_latency_s": self.predicted_latency_s,
            "attainable_utilization": self.attainable_utilization,
            "batch": self.batch,
            "throughput_per_s": self.throughput,
            "verified": self.spec.verified,
            "notes": list(self.notes),
        }


def utilization(
    report: Report,
    spec: HardwareSpec,
    latency_s: float,
    *,
    phase: str | None = None,
    dtype: str | None = None,
    tf32: bool = False,
    ideal: bool = False,
    runtime: str = "eager",
) -> Utilization:
    """Utilization of ``spec`` when ``report``'s model runs in ``latency_s`` seconds.

    ``dtype`` picks the peak (default: the dtype doing most of the model's MAC FLOPs);
    ``ideal`` and ``runtime`` are the roofline's, for the prediction beside it.
    """
    if not latency_s > 0 or latency_s == float("inf"):
        raise HardwareSpecError(f"latency must be a positive time (got {latency_s!r})")
    rule = figure_rule(latency_s, "seconds")
    if rule:
        raise HardwareSpecError(f"latency {latency_s!r} {rule}")
    if dtype is not None:
        from modelmeter.units import canonical_dtype

        try:
            dtype = canonical_dtype(dtype)
        except ValueError as e:
            raise HardwareSpecError(str(e)) from None
    dt = dtype or main_dtype(report, phase)
    try:
        choice = resolve_peak(spec, dt, "matrix", tf32=tf32)
    except ValueError as e:
        raise HardwareSpecError(str(e)) from None
    roof = roofline(report, spec, phase=phase, tf32=tf32, ideal=ideal, runtime=runtime)
    cost = report.total(phase).cost
    notes = [choice.note] if choice.note else []
    fit = roof.weights.note() if roof.weights is not None else None  # weights over memory
    notes += [n for n in roof.notes if n not in notes and ("unverified" in n or n == fit)]
    if max(2 * cost.macs, cost.flops) / latency_s > choice.value:
        notes.append(
            "above 100%: the latency is shorter than the peak allows for this many operations "
            "(check the latency, the batch, or the peak's dtype)"
        )
    return Utilization(
        spec=spec,
        latency_s=float(latency_s),
        macs=cost.macs,
        flops=cost.flops,
        dtype=dt,
        peak=choice.value,
        peak_key=choice.key,
        predicted_latency_s=roof.latency_s,
        batch=roof.batch,
        notes=notes,
    )


__all__ = ["Utilization", "utilization"]
