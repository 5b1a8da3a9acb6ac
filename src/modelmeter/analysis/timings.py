"""What a runner measured, and the statistics of repeated timings.

A frontend's runner produces :class:`Timings` (seconds per call, as measured, and the peak
:class:`MemoryUse`); :func:`timing_stats` summarises repeated timings. Pure: nothing here
imports a framework or touches a device.

Quantiles use linear interpolation between closest ranks (Hyndman-Fan type 7, numpy's
default): for sorted values x[0..n-1], quantile q sits at h = (n-1)q and is
x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.analysis.classes import ClassProfile

# ---- statistics ----------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation (type 7)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} is not within 0..1")
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


@dataclass(frozen=True, slots=True)
class TimingStats:
    """Summary of repeated timings, in seconds: median and spread (min, max, quartiles)."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    q1: float
    q3: float

    @property
    def iqr(self) -> float:
        """Interquartile range q3 - q1."""
        return self.q3 - self.q1

    @property
    def rel_iqr(self) -> float:
        """IQR over the median (0 when the median is 0): the run's relative spread."""
        return self.iqr / self.median if self.median else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median_s": self.median,
            "mean_s": self.mean,
            "min_s": self.min,
            "max_s": self.max,
            "q1_s": self.q1,
            "q3_s": self.q3,
            "iqr_s": self.iqr,
        }


def timing_stats(samples: Sequence[float]) -> TimingStats:
    """Median, mean, min, max and quartiles of ``samples`` (seconds; finite, >= 0)."""
    xs = [float(s) for s in samples]
    if not xs:
        raise ValueError("no timings to summarise")
    if any(not math.isfinite(x) or x < 0 for x in xs):
        raise ValueError("timings must be finite and >= 0")
    return TimingStats(
        n=len(xs),
        median=quantile(xs, 0.5),
        mean=math.fsum(xs) / len(xs),
        min=min(xs),
        max=max(xs),
        q1=quantile(xs, 0.25),
        q3=quantile(xs, 0.75),
    )


def ratio_error(predicted: float, measured: float) -> float:
    """|predicted / measured - 1| (inf when nothing was measured)."""
    if measured <= 0:
        return math.inf
    return abs(predicted / measured - 1.0)


# ---- what the runner measured --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryUse:
    """Peak memory during the timed runs, in bytes, and how it was taken.

    ``baseline_bytes`` is the figure just before the runs (weights and inputs already placed),
    so ``delta_bytes`` is what running added (activations, workspaces, allocator caches).
    """

    method: str
    peak_bytes: int | None = None
    baseline_bytes: int | None = None

    @property
    def delta_bytes(self) -> int | None:
        if self.peak_bytes is None or self.baseline_bytes is None:
            return None
        return max(0, self.peak_bytes - self.baseline_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "peak_bytes": self.peak_bytes,
            "baseline_bytes": self.baseline_bytes,
            "delta_bytes": self.delta_bytes,
        }


@dataclass(slots=True)
class Timings:
    """Raw measurements of one model on one device (seconds per forward call).

    ``module_samples`` (per-module timing, hooks on) maps a module name to its time in each
    hooked forward (summed over its calls); ``hooked_samples`` are the whole hooked forwards.
    """

    device: str
    device_name: str
    timer: str
    samples: list[float]
    warmup: int
    memory: MemoryUse
    torch_version: str = ""
    threads: int | None = None
    tf32: bool = False
    hooked_samples: list[float] = field(default_factory=list)
    module_samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    page_faults: float | None = None
    page_size: int = 4096
    class_profile: ClassProfile | None = None


# ---- prediction error over many measurements (the GPU check) ------------------------------


def median_error(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Median of |predicted / measured - 1| over (predicted, measured) pairs (None if none)."""
    errs = [ratio_error(p, m) for p, m in pairs if m > 0]
    return quantile(errs, 0.5) if errs else None


__all__ = [
    "MemoryUse",
    "TimingStats",
    "Timings",
    "median_error",
    "quantile",
    "ratio_error",
    "timing_stats",
]
