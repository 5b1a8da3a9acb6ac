"""The host's time a generation spends in Python beyond the per-op figure, under eager
PyTorch: per ``nn.Module`` call (a module's forward body: argument handling, the attention
interface's dispatch, the cache's bookkeeping, views the analysis counts as free) and per
step of the generation loop (transformers' ``generate``: logits processors, stopping
criteria, the next step's inputs). The roofline charges each counted op its host issue time;
a Python-heavy decoder spends more than that per step, which a small model's decode step,
bound by the host, shows (docs/generation.md, "Measured beside the prediction").

A chip file gives the two figures as ``[overhead] module`` and ``[overhead] step`` (measured
by ``modelmeter calibrate``: :mod:`modelmeter.hardware.calibrate_host`); a step (the prefill
or one decode step) then costs ``module calls x module + step`` more, in series with the
roofline's time (the host runs them between the step's kernels). Only under the eager
runtime: CUDA graphs / ``torch.compile`` replay the step without its Python. Without the
figures (every shipped GPU file: no measurement of them there) nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.report import Report


def module_calls(report: Report) -> int:
    """``nn.Module`` calls in one run of the Report's model (its module tree's call counts)."""
    return sum(node.calls for node in report.modules())


@dataclass(frozen=True)
class HostTime:
    """Seconds per module call and per generation step (both 0: nothing to add)."""

    module_s: float = 0.0
    step_s: float = 0.0

    @classmethod
    def of(cls, spec: Any, runtime: str = "eager") -> HostTime:
        """The chip's figures under ``runtime`` (zero unless eager)."""
        if runtime != "eager":
            return cls()
        return cls(spec.module_overhead or 0.0, spec.step_overhead or 0.0)

    def __bool__(self) -> bool:
        return bool(self.module_s or self.step_s)

    def step(self, report: Report) -> float:
        """The host time one step running ``report`` adds."""
        return module_calls(report) * self.module_s + self.step_s

    def note(self, prefill_calls: int, decode_calls: int) -> str:
        return (
            f"eager host time beyond the per-op figure: {self.module_s * 1e6:.3g}us per module "
            f"call ({prefill_calls} in the prefill, {decode_calls} per decode step) + "
            f"{self.step_s * 1e6:.3g}us per generation step (the chip's [overhead] module, step)"
        )


__all__ = ["HostTime", "module_calls"]
