"""Trace a generation's phases at a few batches and contexts and fit them exactly
(:class:`~modelmeter.analysis.generation_grid.GenerationGrid`), for the charts of
``generate --plot``: the prefill in the batch, a decode step in the batch and the context.

Fitted as the rest of the project fits (:func:`~modelmeter.analysis.report_formula.fit_report`):
every op's figures and the live bytes over the run, at batches 1, 2, 3 (a degree up to 2 is
tried, 4 when needed) and, for a decode step, at the first three contexts of each piece, then
checked where they were not fitted: the grid's diagonal, and the largest batch the charts ask
for at the piece's last context and at the asked prompt. A figure that fails is refused and
:func:`fit_generation` raises :class:`~modelmeter.analysis.polynomial.NotPolynomial` (the
charts then trace every point).
"""

from __future__ import annotations

from typing import Any

from modelmeter.analysis import cache_layout
from modelmeter.analysis.generation import pieces
from modelmeter.analysis.generation_grid import DecodePiece, GenerationGrid
from modelmeter.analysis.polynomial import NotPolynomial
from modelmeter.analysis.report_formula import ReportFormula, fit_report
from modelmeter.builder import build

BATCHES = [1, 2, 3, 4]  # the batches a fit of degree <= 2 is tried on, in order
MAX_BATCH_DEGREE = 2


class _Phases:
    """The model's phases traced once each: the prefill at a batch, a decode step at a batch
    and a context (its cache shaped as that batch's prefill left it)."""

    def __init__(self, model: Any, *, prompt: int, cache: str, convention: str, label: str,
                 pricing: Any, progress: Any = None) -> None:  # fmt: skip
        self.model, self.prompt, self.cache = model, prompt, cache
        self.convention, self.label, self.pricing = convention, label, pricing
        self.progress = progress  # told before each trace (their number is not known ahead)
        self.seen: dict[tuple[int, int], tuple[Any, Any, list[int]]] = {}

    def __call__(self, batch: int, context: int = 0) -> tuple[Any, Any, list[int]]:
        """(the phase's cache layers, its Report, its live bytes over the run)."""
        key = (batch, context)
        if key not in self.seen:
            from modelmeter.frontends.torch.kvcache import trace_phase

            template = self(batch)[0] if context else None
            if self.progress:
                at = f", context {context}" if context else ""
                self.progress(f"tracing for the charts: batch {batch}{at}", len(self.seen), None)
            d = trace_phase(self.model, batch=batch, tokens=1 if context else self.prompt,
                            context=context, template=template, convention=self.convention,
                            label=self.label)  # fmt: skip
            d.trace = cache_layout.served(d.trace, self.cache)
            report = build(d.trace, pricing=self.pricing)
            self.seen[key] = (d.layers, report, list(d.trace.live_timeline))
        return self.seen[key]


def _complete(fit: ReportFormula, what: str) -> ReportFormula:
    if not fit.complete or isinstance(fit.peak, str):
        why = sorted(set(fit.fit.refused.values())) or ["its activation peak has no formula"]
        raise NotPolynomial(f"{what} is not a polynomial: {why[0]}")
    return fit


def _in_batch(phase: Any, far: int, what: str) -> ReportFormula:
    """``phase(batch) -> (layers, report, timeline)`` fitted in the batch."""
    fit = fit_report(lambda p: phase(p[0])[1], ("batch",), [BATCHES], [MAX_BATCH_DEGREE],
                     checks=[(far,)] if far not in BATCHES else [],
                     timeline=lambda p: phase(p[0])[2])  # fmt: skip
    return _complete(fit, what)


def _piece(phases: _Phases, start: int, end: int, far: int, also: int) -> DecodePiece:
    """A decode step on ``start .. end``: fitted in (batch, context) on its first three
    contexts, checked at ``far`` batches at its last context and at ``also`` (when inside);
    a piece of one or two contexts: in the batch at each."""
    if end - start + 1 < 3:
        return DecodePiece(start, end, by_context={
            c: _in_batch(lambda b, c=c: phases(b, c), far, f"the decode step at context {c}")
            for c in range(start, end + 1)
        })  # fmt: skip
    checks = sorted({(far, end)} | ({(far, also)} if start <= also <= end else set()))
    fit = fit_report(lambda p: phases(*p)[1], ("batch", "context"),
                     [BATCHES, [start, start + 1, start + 2]], [MAX_BATCH_DEGREE, 1],
                     checks=checks, timeline=lambda p: phases(*p)[2])  # fmt: skip
    return DecodePiece(start, end, _complete(fit, f"the decode step on {start}..{end}"))


def fit_generation(
    model: Any, *, prompt: int, lo: int, hi: int, breaks: list[int], far: int, cache: str,
    convention: str, label: str, pricing: Any, progress: Any = None,
) -> GenerationGrid:  # fmt: skip
    """The prefill of ``prompt`` tokens in the batch and a decode step on contexts ``lo ..
    hi`` (pieces cut at ``breaks``) in the batch and the context, checked at batch ``far``
    (see the module docstring); NotPolynomial when a figure is not a polynomial.
    ``progress(stage, done, None)``: told before each trace."""
    phases = _Phases(model, prompt=prompt, cache=cache, convention=convention, label=label,
                     pricing=pricing, progress=progress)  # fmt: skip
    prefill = _in_batch(lambda b: phases(b), far, "the prefill")
    decode = tuple(_piece(phases, s, e, far, prompt) for s, e in pieces(lo, hi, breaks))
    return GenerationGrid(prefill, decode, traces=len(phases.seen))


__all__ = ["fit_generation"]
