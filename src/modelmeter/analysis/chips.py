"""One model on several chips side by side: per chip the roofline's predicted latency, bound,
attainable utilization, throughput and whether the weights fit its memory. Plain data
(``render.chips`` shows it); JSON schema ``modelmeter.chips/1``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

CHIPS_SCHEMA = "modelmeter.chips/1"


@dataclass(frozen=True, slots=True)
class ChipRow:
    """One chip's figures for the model: exactly those of its roofline."""

    chip: str
    display_name: str
    latency_s: float
    bound: str
    utilization: float
    throughput_per_s: float | None
    dtype: str
    peak: float
    bandwidth: float
    weight_bytes: int | None
    capacity_bytes: float | None
    verified: bool

    @property
    def weights_fit(self) -> bool | None:
        """Whether the weights alone fit the chip's memory (None: its capacity is unknown)."""
        if self.weight_bytes is None or self.capacity_bytes is None:
            return None
        return self.weight_bytes <= self.capacity_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "display_name": self.display_name,
            "latency_s": self.latency_s,
            "bound": self.bound,
            "utilization": self.utilization,
            "throughput_per_s": self.throughput_per_s,
            "dtype": self.dtype,
            "peak_flops_per_s": self.peak,
            "bandwidth": self.bandwidth,
            "weight_bytes": self.weight_bytes,
            "capacity_bytes": self.capacity_bytes,
            "weights_fit": self.weights_fit,
            "verified": self.verified,
        }


@dataclass(frozen=True, slots=True)
class ChipComparison:
    """The model's rows, one per chip, in the order the chips were given."""

    model: str
    convention: str
    batch: int | None
    rows: list[ChipRow]

    def fastest(self) -> ChipRow:
        return min(self.rows, key=lambda r: r.latency_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CHIPS_SCHEMA,
            "model": self.model,
            "convention": self.convention,
            "batch": self.batch,
            "rows": [r.to_dict() for r in self.rows],
        }


def chip_row(roof: Roofline) -> ChipRow:
    """The row of one chip from its roofline."""
    spec = roof.spec
    weights = roof.weights
    return ChipRow(
        chip=spec.name,
        display_name=spec.display_name,
        latency_s=roof.latency_s,
        bound=roof.total.bound,
        utilization=roof.utilization,
        throughput_per_s=roof.throughput,
        dtype=roof.dtype,
        peak=roof.peak,
        bandwidth=spec.bandwidth,
        weight_bytes=None if weights is None else weights.weight_bytes,
        capacity_bytes=spec.capacity,
        verified=spec.verified,
    )


__all__ = ["CHIPS_SCHEMA", "ChipComparison", "ChipRow", "chip_row"]
