"""Measured time per kernel class beside the roofline's (``measure --per-class``).

The runner profiles a forward call and sums its top-level ops' times per kernel class
(:class:`ClassProfile`); :func:`join_classes` puts the analysis' op records and the roofline's
time for the same classes beside them. Where the profile measured device kernel time (CUDA),
the roofline's figure is its busy time, max(compute, memory); where it measured host time per
op (CPU: the op runs in the calling thread, dispatch included), it is busy time plus the
per-kernel overhead, as the roofline charges in series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import Report


@dataclass(frozen=True, slots=True)
class ClassMeasured:
    """One kernel class in a profile, per forward call."""

    kernel_class: str
    seconds: float
    ops: float  # top-level ATen ops
    kernels: float | None = None  # device kernels (CUDA only)


@dataclass(frozen=True)
class ClassProfile:
    """What the profiler saw: per-class times per call, and how they were taken."""

    method: str
    basis: str
    runs: int
    profiled_s: float  # median wall time of a profiled call
    classes: list[ClassMeasured]
    device_time: bool = False  # kernel time on the device (else host time per op)
    notes: list[str] = field(default_factory=list)
    mean_s: float = 0.0  # mean wall time of a profiled call (the classes' times are means)


@dataclass(frozen=True, slots=True)
class ClassTiming:
    """One kernel class: measured per call, and the analysis' and roofline's view of it."""

    kernel_class: str
    records: int
    measured_s: float = 0.0
    ops: float = 0.0
    kernels: float | None = None
    predicted_s: float | None = None

    @property
    def ratio(self) -> float | None:
        """predicted / measured (None without either)."""
        if self.predicted_s is None or not self.measured_s:
            return None
        return self.predicted_s / self.measured_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel_class": self.kernel_class,
            "op_records": self.records,
            "measured_ops": self.ops,
            "measured_kernels": self.kernels,
            "measured_s": self.measured_s,
            "predicted_s": self.predicted_s,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class PerClass:
    """The per-class table of a measurement."""

    profile: ClassProfile
    rows: list[ClassTiming]
    notes: list[str] = field(default_factory=list)

    @property
    def measured_s(self) -> float:
        return sum(r.measured_s for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        return {
            "method": p.method,
            "basis": p.basis,
            "runs": p.runs,
            "profiled_call_s": p.profiled_s,
            "measured_s": self.measured_s,
            "classes": [r.to_dict() for r in self.rows],
            "notes": [*p.notes, *self.notes],
        }


def join_classes(profile: ClassProfile, report: Report, roof: Roofline | None) -> PerClass:
    """Rows for every class measured or predicted, the most measured time first."""
    from modelmeter.analysis.kernels import record_class

    records: dict[str, int] = {}
    for node in report.modules():
        for rec in node.ops:
            if rec.phase == "forward":
                k = record_class(rec)
                records[k] = records.get(k, 0) + 1
    predicted: dict[str, float] = {}
    if roof is not None:
        for t in roof.ops:
            busy = t.latency_s - t.overhead_s
            serial = 0.0 if profile.device_time else roof.spec.overhead_for(t.dtype)
            predicted[t.kernel_class] = predicted.get(t.kernel_class, 0.0) + busy + serial
    measured = {m.kernel_class: m for m in profile.classes}
    rows = []
    for k in {*measured, *records, *predicted}:
        m = measured.get(k)
        rows.append(
            ClassTiming(
                kernel_class=k,
                records=records.get(k, 0),
                measured_s=m.seconds if m else 0.0,
                ops=m.ops if m else 0.0,
                kernels=m.kernels if m else None,
                predicted_s=predicted.get(k) if roof is not None else None,
            )
        )
    rows.sort(key=lambda r: (-r.measured_s, -(r.predicted_s or 0.0), r.kernel_class))
    unrecorded = [  # "other" is ops with no formula (views, layout reorders): expected
        r.kernel_class
        for r in rows
        if r.ops and not r.records and r.measured_s and r.kernel_class != "other"
    ]
    notes = []
    if unrecorded:
        notes.append(
            f"measured but not in the analysis: {', '.join(unrecorded)} (the run took a path "
            "the analysis did not trace, e.g. nn.MultiheadAttention's fused fast path, whose "
            "work the analysis counts as matmul and softmax ops)"
        )
    return PerClass(profile, rows, notes)


__all__ = ["ClassMeasured", "ClassProfile", "ClassTiming", "PerClass", "join_classes"]
