"""Whether a model's weights fit a chip's memory: a pure function of a Report and a spec.

``weight_bytes`` is the parameters' bytes in the dtypes analysed (``--dtype`` applied; the
Report's ``size_by_dtype()["native"]``): buffers, activations, gradients and optimizer state
come on top, so weights that do not fit alone cannot run from the chip's memory at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.hardware.spec import HardwareSpec
from modelmeter.report import Report
from modelmeter.units import format_bytes


@dataclass(frozen=True, slots=True)
class WeightsFit:
    """The weights' bytes next to a chip's memory capacity (None: the spec gives none)."""

    chip: str
    weight_bytes: int
    capacity: float | None

    @property
    def fits(self) -> bool | None:
        """Whether the weights alone fit (None when the capacity is unknown)."""
        return None if self.capacity is None else self.weight_bytes <= self.capacity

    def note(self) -> str | None:
        """The sentence an analysis shows when the weights alone do not fit, else None."""
        if self.fits is not False or self.capacity is None:
            return None
        return (
            f"the weights alone ({format_bytes(self.weight_bytes)}) do not fit in the "
            f"{format_bytes(self.capacity)} of memory of {self.chip}: the prediction assumes "
            "they do (they need a smaller dtype, offloading or several devices)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_bytes": self.weight_bytes,
            "capacity_bytes": self.capacity,
            "weights_fit": self.fits,
        }


def weights_fit(report: Report, spec: HardwareSpec) -> WeightsFit:
    """The parameters' bytes of ``report`` against the memory capacity of ``spec``."""
    return WeightsFit(spec.name, report.size_by_dtype()["native"], spec.capacity)


__all__ = ["WeightsFit", "weights_fit"]
