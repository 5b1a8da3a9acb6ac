"""Several models side by side (the paper table): one row of whole-model totals per model, and
the predicted latency and bound when a chip is given. Plain data; ``render.compare`` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmeter.report import InputSpec, Report
from modelmeter.storage import Pricing

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One model's totals: exactly the figures of its own report (and roofline)."""

    model: str
    inputs: list[InputSpec]
    params: int
    macs: int
    flops: int
    bytes_read: int
    bytes_written: int
    peak_activation_bytes: int
    latency_s: float | None = None
    bound: str | None = None

    @property
    def bytes_moved(self) -> int:
        """Bytes read plus bytes written by every op."""
        return self.bytes_read + self.bytes_written

    def sort_value(self, key: str) -> float | None:
        """The figure ``--sort KEY`` orders models by (bytes: read + written)."""
        if key == "bytes":
            return self.bytes_moved
        if key == "latency":
            return self.latency_s
        return float(getattr(self, key))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "inputs": [i.to_dict() for i in self.inputs],
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "peak_activation_bytes": self.peak_activation_bytes,
            "latency_s": self.latency_s,
            "bound": self.bound,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """The rows of several models analysed with one convention (and one chip, if any)."""

    rows: list[ComparisonRow]
    convention: str
    chip: str | None = None
    storage: Pricing | None = None  # the storage formats every row's bytes assume
    runtime: str | None = None  # with a chip: the runtime and figures (attainable, datasheet,
    figures: str | None = None  # ideal) that priced the latencies

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "modelmeter.comparison/1",
            "convention": self.convention,
            "chip": self.chip,
            **({} if self.chip is None else {"runtime": self.runtime, "figures": self.figures}),
            "rows": [r.to_dict() for r in self.rows],
            **({} if self.storage is None else {"storage": self.storage.to_dict()}),
        }


def comparison_row(label: str, report: Report, roofline: Roofline | None = None) -> ComparisonRow:
    """The row of one model: ``report.total()`` (all phases) and the roofline's total."""
    t = report.total()
    return ComparisonRow(
        model=label,
        inputs=list(report.inputs),
        params=t.params,
        macs=t.cost.macs,
        flops=t.cost.flops,
        bytes_read=t.cost.bytes_read,
        bytes_written=t.cost.bytes_written,
        peak_activation_bytes=t.peak_activation_bytes,
        latency_s=None if roofline is None else roofline.latency_s,
        bound=None if roofline is None else roofline.total.bound,
    )

