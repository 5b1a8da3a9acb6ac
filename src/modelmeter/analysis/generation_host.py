"""The host's time a generation spends in Python per step of the generation loop, beyond the
per-op and per-module-call figures, under eager PyTorch: transformers' ``generate`` runs its
logits processors, stopping criteria and the next step's inputs between two forwards. The
roofline charges each counted op its host issue time and each ``nn.Module`` call
``[overhead] module_call`` (:mod:`modelmeter.analysis.module_calls`); a small model's decode
step, bound by the host, shows the loop's own time on top (docs/generation.md, "Measured
beside the prediction").

A chip file gives it as ``[overhead] step`` (measured on the CPU by ``modelmeter calibrate``:
:mod:`modelmeter.hardware.calibrate_host`); a step (the prefill or one decode step) then costs
that much more, in series with the roofline's time. Only under the eager runtime: CUDA graphs
/ ``torch.compile`` replay the step without its Python. Without the figure (every shipped GPU
file: no measurement of it there) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostTime:
    """Seconds per generation step (0: nothing to add)."""

    step_s: float = 0.0

    @classmethod
    def of(cls, spec: Any, runtime: str = "eager") -> HostTime:
        """The chip's figure under ``runtime`` (zero unless eager)."""
        if runtime != "eager":
            return cls()
        return cls(spec.step_overhead or 0.0)

    def __bool__(self) -> bool:
        return bool(self.step_s)

    def note(self) -> str:
        return (f"eager host time of the generation loop: {self.step_s * 1e6:.3g}us per step "
                f"(the prefill and each decode step; the chip's [overhead] step)")  # fmt: skip


__all__ = ["HostTime"]
