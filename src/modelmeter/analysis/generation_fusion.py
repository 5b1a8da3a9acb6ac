"""``generate(..., fuse=RULES)``: a generation as a compiling serving runtime would run it,
its kernels fused by :mod:`modelmeter.analysis.fusion`'s rules, beside the unfused one.

The fusion decisions are taken once per Report traced whole (the prefill, and each decode
piece's first traced context, whose shapes match their costs) as a
:class:`~modelmeter.analysis.fusion.FusionPlan`, and replayed on the Reports the chip prices:
the prefill as priced (routed experts, one device's share under tensor parallelism) and the
decode step at every context the exact sum evaluates (``report_at(c)`` of the per-op curves).
A fused kernel's counts are sums of its ops' counts less the intermediates (outputs of ops in
the kernel), each linear in the context, so a fused decode step's counts stay linear in the
context and the exact sum stays exact. The plan is checked against the plans of the other
traced contexts of each piece: where one differs, a note says so (the first is used).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.fusion import FusionPlan, fusion_plan
from modelmeter.analysis.generation_time import GenerationTiming
from modelmeter.report import Report


class FusedCurves:
    """Decode Reports at any context, fused: ``curves.report_at(c)`` (an ``OpCurves`` or one
    device's ``DeviceCurves``) with piece ``i``'s plan applied."""

    def __init__(self, curves: Any, starts: Sequence[int], plans: Sequence[FusionPlan]) -> None:
        self.curves, self.starts, self.plans = curves, list(starts), list(plans)
        self._memo: list[dict[int, Any]] = [{} for _ in self.plans]

    def report_at(self, c: int) -> Report:
        i = max(j for j, s in enumerate(self.starts) if s <= c)
        return self.plans[i].apply(self.curves.report_at(c), self._memo[i])

    def nondecreasing(self, c: int) -> bool:
        """A fused kernel reads and writes what its ops read and write from and to memory
        (the intermediates cancel): no count decreases where no op's does."""
        return bool(self.curves.nondecreasing(c))


def decode_plans(reports: Callable[[int], Report], starts: Sequence[int],
                 traced: Sequence[int], rules: tuple[str, ...]) -> tuple[list[FusionPlan], list[str]]:  # fmt: skip
    """Each piece's plan (``reports(c)``: the traced decode Report at context ``c``; a
    piece runs from its start to the next), and notes where another traced context of the
    piece would fuse otherwise."""
    plans, notes = [], []
    ends = [*starts[1:], None]
    for start, end in zip(starts, ends, strict=True):
        plan = fusion_plan(reports(start), rules)
        plans.append(plan)
        for c in traced:
            if c > start and (end is None or c < end) and fusion_plan(reports(c), rules) != plan:
                notes.append(f"fusion: the decode step at context {c} fuses otherwise than at "
                             f"{start}; the plan of context {start} is used on the piece")  # fmt: skip
    return plans, notes


def _moved(report: Report) -> int:
    c = report.total().cost
    return c.bytes_read + c.bytes_written


def _kernels(report: Report) -> int:
    return sum(len(node.ops) for node in report.modules())


@dataclass(frozen=True)
class GenerationFusion:
    """The generation unfused and fused by ``rules``: kernels and bytes (read + written) of
    the prefill and of the first decode step as priced (one device's under tensor
    parallelism), and the fused timing (None without a chip; the unfused one is the
    result's own ``timing``)."""

    rules: tuple[str, ...]
    prefill_kernels: int
    prefill_kernels_fused: int
    prefill_bytes: int
    prefill_bytes_fused: int
    decode_kernels: int
    decode_kernels_fused: int
    decode_bytes: int
    decode_bytes_fused: int
    timing: GenerationTiming | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, rules: tuple[str, ...], prefill: tuple[Report, Report],
           decode: tuple[Report, Report], timing: GenerationTiming | None,
           notes: Sequence[str] = ()) -> GenerationFusion:  # fmt: skip
        """From the (unfused, fused) prefill and first decode step Reports."""
        (p, pf), (d, df) = prefill, decode
        return cls(rules, _kernels(p), _kernels(pf), _moved(p), _moved(pf), _kernels(d),
                   _kernels(df), _moved(d), _moved(df), timing, tuple(notes))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        t = self.timing
        return {
            "rules": list(self.rules),
            "prefill": {"kernels": [self.prefill_kernels, self.prefill_kernels_fused],
                        "bytes": [self.prefill_bytes, self.prefill_bytes_fused]},
            "decode_step_first": {"kernels": [self.decode_kernels, self.decode_kernels_fused],
                                  "bytes": [self.decode_bytes, self.decode_bytes_fused]},
            "pairs": "[unfused, fused]",
            "timing": t.to_dict() if t is not None else None,
            "notes": list(self.notes),
        }  # fmt: skip


__all__ = ["FusedCurves", "GenerationFusion", "decode_plans"]
