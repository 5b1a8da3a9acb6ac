"""``generate(..., fuse=RULES)``: the generation's rules checked before any work, and its
fused pricing beside the unfused one (:mod:`modelmeter.analysis.generation_fusion`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from modelmeter.analysis.fusion import RULES, fusion_plan, parse_rules
from modelmeter.analysis.generation_fusion import FusedCurves, GenerationFusion, decode_plans
from modelmeter.errors import InputError


def fuse_rules(fuse: Any) -> tuple[str, ...] | None:
    """None (not asked), or the rules: ``all``, ``none``, a comma list, or a sequence of
    rule names (an InputError for an unknown one)."""
    if fuse is None or fuse is False:
        return None
    if fuse is True:
        return RULES
    if isinstance(fuse, str):
        return parse_rules(fuse)
    rules = tuple(fuse)
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise InputError(f"unknown fusion rule {bad[0]!r}; use all, none or some of "
                         f"{', '.join(RULES)}")  # fmt: skip
    return rules


def fused_generation(rules: tuple[str, ...], prefill: tuple[Any, Any],
                     decode: tuple[Any, Any, list[int]],
                     timing: Callable[[Any, Any], Any] | None,
                     communicate: Callable[[Any], Any]) -> GenerationFusion:  # fmt: skip
    """The generation fused by ``rules``. ``prefill``: the traced Report (the plan is made on
    it) and the Report priced; ``decode``: the curves priced (``report_at``), the step
    tracer (``step(c)[1]``: the traced Report at ``c``, with ``traced``) and the pieces'
    first contexts; ``timing(prefill,
    curves)``: the unfused pricing (None without a chip); ``communicate``: what adds the
    collectives' time under tensor parallelism (the identity on one device)."""
    traced, timed = prefill
    curves, step, starts = decode
    pre_plan = fusion_plan(traced, rules)
    plans, notes = decode_plans(lambda c: step(c)[1], starts, sorted(step.traced), rules)
    fused_curves = FusedCurves(curves, starts, plans)
    first = min(starts)  # counted before the timing rewrites the curves at other contexts
    unfused_step = curves.report_at(first)
    figures = GenerationFusion.of(rules, (timed, pre_plan.apply(timed)),
                                  (unfused_step, fused_curves.report_at(first)), None, notes)
    if timing is None:
        return figures
    fused_timing = communicate(timing(pre_plan.apply(timed), fused_curves))
    return replace(figures, timing=fused_timing)


__all__ = ["fuse_rules", "fused_generation"]
