"""The peak of a step on one device of a plan (tensor, sequence, pipeline parallelism, ZeRO),
from the one-device trace: its timeline of live bytes re-weighted op by op. An approximation,
stated:

After op i the traced step holds the static bytes (weights, buffers, master weights,
optimizer states), the gradients made so far, and the rest: saved activations still alive and
the op's temporaries. One device of the plan holds

* its static bytes and gradients as the plan shards them (``analysis/sharding.py``,
  ``parallel.device_fraction``): the gradients made so far scaled by its share of them;
* in the forward and backward, the rest scaled as its saved activations are (one micro-batch
  of the worst stage's bytes over the whole model's: temporaries are taken to split as the
  saved activations do), plus the saved activations of the other micro-batches the schedule
  keeps in flight on that stage (``activation_split``);
* in the optimizer's step, the rest (the foreach temporaries) scaled as its optimizer bytes
  (master weights and states) are: a device steps only the parameters it holds.

With gradient accumulation a forward or backward op of micro-batches 2..k also holds every
gradient already made (as ``training.find_peak``). On one device with no plan this is the
traced peak, op for op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.events import StepMemory
    from modelmeter.report import Report


@dataclass(frozen=True, slots=True)
class DeviceShares:
    """What one device holds: static bytes and gradients (after the plan), and the scales of
    the rest: ``activations`` (its micro-batch's saved bytes over the whole model's),
    ``optimizer`` (its optimizer bytes over the whole), ``held_extra`` (the other in-flight
    micro-batches' saved bytes)."""

    static: int
    gradients: int
    activations: float
    optimizer: float
    held_extra: int


@dataclass(frozen=True, slots=True)
class DevicePeak:
    """The most bytes one device holds at once, and after which op (as ``training.Peak``)."""

    bytes: int
    phase: str
    op: str
    module: str
    later: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "phase": self.phase, "op": self.op, "module": self.module,
                "later_micro_batch": self.later}  # fmt: skip


def timeline_rows(report: Report, memory: StepMemory) -> tuple[list[tuple], dict]:
    """What ``device_peak`` reads of a trace, once for any number of plans: (event index,
    phase, gradient bytes made before it, made by it, the rest live after it) of each op, and
    where each op ran (module, op, phase)."""
    where = {rec.seq: (node.name, rec.op, rec.phase) for node in report.modules()
             for rec in node.ops}  # fmt: skip
    return list(_rows(memory, where)), where


def device_peak(report: Report, memory: StepMemory, accumulate: int, shares: DeviceShares,
                rows: tuple[list[tuple], dict] | None = None) -> DevicePeak:  # fmt: skip
    """The device's peak (see the module docstring); ``rows``: ``timeline_rows`` of the
    trace, when already made."""
    rows, where = timeline_rows(report, memory) if rows is None else rows
    total = sum(n for _, n in memory.grad_born)
    g = shares.gradients / total if total else 0.0
    best, best_i, later = -1.0, -1, False
    for i, phase, _, made_le, rest in rows:  # each op as it ran
        scale = shares.optimizer if phase == "optimizer" else shares.activations
        extra = 0 if phase == "optimizer" else shares.held_extra
        value = made_le * g + rest * scale + extra
        if value > best:
            best, best_i = value, i
    if accumulate > 1 and total:  # a forward or backward op of micro-batches 2..k
        for i, phase, made_lt, made_le, rest in rows:
            if phase == "optimizer":
                continue
            value = (total - made_lt + made_le) * g + rest * shares.activations
            if value + shares.held_extra > best:
                best, best_i, later = value + shares.held_extra, i, True
    module, op, phase = where.get(best_i, ("", "-", "forward"))
    return DevicePeak(shares.static + max(round(best), 0), phase, op, module, later)


def _rows(memory: StepMemory, where: dict[int, tuple[str, str, str]]) -> Any:
    """(event index, phase, gradient bytes made before it, made by it, the rest live after
    it) for each op of the timeline."""
    born = sorted(memory.grad_born)
    lt = le = made_lt = made_le = 0
    for i, live in enumerate(memory.timeline):
        while lt < len(born) and born[lt][0] < i:
            made_lt += born[lt][1]
            lt += 1
        while le < len(born) and born[le][0] <= i:
            made_le += born[le][1]
            le += 1
        yield i, where.get(i, ("", "", "optimizer"))[2], made_lt, made_le, live - made_le


__all__ = ["DevicePeak", "DeviceShares", "device_peak", "timeline_rows"]
