"""Where a roofline's predicted time goes, and the ceilings a roofline chart draws: pure
functions of a :class:`~modelmeter.analysis.roofline.Roofline` (the charts in
``render.plots`` only format what these return)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelmeter.hardware.spec import resolve_peak

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline


def breakdown_rows(roof: Roofline, top: int) -> list[tuple[str, float, float, float]]:
    """(module, compute-limited s, memory-limited s, overhead s) of the ``top`` modules by
    time (each module's own ops). Per op, max(compute, memory) goes to whichever is larger,
    so the three parts add up to the module's predicted latency."""
    parts: dict[str, list[float]] = {}
    for t in roof.ops:
        p = parts.setdefault(t.module, [0.0, 0.0, 0.0])
        if t.compute_s >= t.memory_s:
            p[0] += t.compute_s
        else:
            p[1] += t.memory_s
        p[2] += t.overhead_s
    rows = sorted(parts.items(), key=lambda kv: -sum(kv[1]))[:top]
    return [(name, *vals) for name, vals in rows]


@dataclass(frozen=True)
class Ceilings:
    """The roofs of a roofline chart, in FLOP/s and bytes/s.

    ``peak``/``bandwidth``: attainable (the spec's efficiencies applied); ``vector``: the
    attainable vector-unit peak for the roofline's dtype (``vector_key`` names it);
    ``nominal_peak``/``nominal_bandwidth``: the datasheet's figures; ``derated``: whether the
    spec's efficiencies make the attainable roofs differ from them. The ridge point is the
    roofline's own ``ridge_point``."""

    peak: float
    bandwidth: float
    vector: float
    vector_key: str
    nominal_peak: float
    nominal_bandwidth: float
    derated: bool

    @property
    def vector_ridge(self) -> float:
        """The intensity where the vector roof meets the memory slope (FLOP/B)."""
        return self.vector / self.bandwidth

    @property
    def nominal_ridge(self) -> float:
        """The datasheet's peak / bandwidth (FLOP/B)."""
        return self.nominal_peak / self.nominal_bandwidth


def ceilings(roof: Roofline) -> Ceilings:
    """The matrix, vector and memory roofs the roofline's prediction used."""
    spec = roof.spec
    vec = resolve_peak(spec, roof.dtype, "vector", tf32=roof.tf32)
    return Ceilings(
        peak=roof.peak * spec.efficiency_compute,
        bandwidth=spec.bandwidth * spec.efficiency_memory,
        vector=vec.value * spec.efficiency_compute,
        vector_key=vec.key,
        nominal_peak=roof.peak,
        nominal_bandwidth=spec.bandwidth,
        derated=spec.efficiency_compute != 1 or spec.efficiency_memory != 1,
    )


__all__ = ["Ceilings", "breakdown_rows", "ceilings"]
