"""A generation's phases at any batch, from exact polynomials in the batch (the prefill) and in
the batch and the context (a decode step), so that the charts of ``generate --plot`` price
every batch and every context without tracing them.

The prefill of B x P tokens is a :class:`~modelmeter.analysis.report_formula.ReportFormula` in
``batch`` (every op's figures and the live bytes over the run, hence the activation peak); a
decode step is one in ``(batch, context)`` per piece of the context range (pieces cut at the
sliding-window breaks, as :func:`~modelmeter.analysis.generation.pieces` cuts them; a piece of
one or two contexts is fitted in the batch at each of its contexts). :meth:`GenerationGrid.
op_curves` then gives, at batch B, the same per-op polynomials in the context that
``generate(batch=B)`` fits from its own traces (the line through each piece's first two
contexts), the expert layers' weight reads routed for B tokens (:func:`~modelmeter.analysis.
generation_moe.routed_experts`); the roofline evaluated on them gives the same figures, so each
chart point equals a separate run. Pure: the use case (:mod:`modelmeter.usecases.
generate_grid`) traces and fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from modelmeter.analysis.generation import DecodeCurve, OpCurves, op_vector, pieces
from modelmeter.analysis.generation_moe import routed_experts
from modelmeter.analysis.polynomial import NotPolynomial, Piecewise, Polynomial
from modelmeter.analysis.report_formula import PEAK, ReportFormula
from modelmeter.report import Report


@dataclass(frozen=True)
class DecodePiece:
    """A decode step on contexts ``start .. end``: one formula in (batch, context), or one in
    the batch per context (``by_context``) when the piece is too short to fit a line in it."""

    start: int
    end: int
    formula: ReportFormula | None = None
    by_context: dict[int, ReportFormula] = field(default_factory=dict)

    def _fit(self, c: int) -> tuple[ReportFormula, tuple[int, ...]]:
        if self.formula is not None:
            return self.formula, (c,)
        return self.by_context[c], ()

    def report_at(self, batch: int, c: int) -> Report:
        fit, rest = self._fit(c)
        return fit.report_at((batch, *rest))

    def peak_at(self, batch: int, c: int) -> int:
        fit, rest = self._fit(c)
        peak = fit.totals_at((batch, *rest))[PEAK]
        if peak is None:
            raise NotPolynomial("the decode step's activation peak has no formula")
        return peak


@dataclass(frozen=True)
class GenerationGrid:
    """The prefill's formula in the batch and the decode step's pieces on ``lo .. hi``."""

    prefill: ReportFormula
    decode: tuple[DecodePiece, ...]
    traces: int  # phases traced to find and check them

    def prefill_at(self, batch: int) -> Report:
        return self.prefill.report_at((batch,))

    def prefill_peak(self, batch: int) -> int:
        peak = self.prefill.totals_at((batch,))[PEAK]
        if peak is None:
            raise NotPolynomial("the prefill's activation peak has no formula")
        return peak

    def piece(self, c: int) -> DecodePiece:
        for p in self.decode:
            if p.start <= c <= p.end:
                return p
        raise NotPolynomial(f"context {c} is outside the fitted range")

    def decode_at(self, batch: int, c: int) -> Report:
        return self.piece(c).report_at(batch, c)

    def decode_peak(self, batch: int, contexts: Sequence[int]) -> int:
        """The largest activation peak of the decode steps at ``contexts``."""
        return max(self.piece(c).peak_at(batch, c) for c in contexts)

    def op_curves(self, batch: int, lo: int, hi: int, breaks: Sequence[int]) -> OpCurves:
        """The decode step's per-op curves on ``lo .. hi`` at ``batch``, as ``generate`` fits
        them (each piece's template at its first context, the line through its first two),
        with the expert layers' weight reads routed for ``batch`` tokens."""
        ops = OpCurves()
        for start, end in pieces(lo, hi, breaks):
            template = self.decode_at(batch, start)
            first = op_vector(template)
            if end > start:
                second = op_vector(self.decode_at(batch, start + 1))
                polys = [_line(start, a, b) for a, b in zip(first, second)]
            else:
                polys = [Polynomial((a,), "c") for a in first]
            ops.add(start, template, polys)
        zero = Piecewise(tuple(ops.starts), tuple(Polynomial((), "c") for _ in ops.starts))
        curve = DecodeCurve({"bytes_read": zero, "weight_bytes": zero}, lo, hi)
        routed_experts(ops.templates[0], curve, ops, batch)  # rewrites ops in place
        return ops


def _line(start: int, a: int, b: int) -> Polynomial:
    """The polynomial through (start, a) and (start + 1, b) (what ``interpolate`` gives, in
    integers: ``a + (b - a)(c - start)``)."""
    return Polynomial((a - (b - a) * start, b - a), "c")


def traced_contexts(lo: int, hi: int, breaks: Sequence[int]) -> list[int]:
    """The contexts ``generate`` traces a decode step at on ``lo .. hi`` (each piece's first
    three and its last: :func:`~modelmeter.analysis.generation.fit_piece`'s points), whose
    largest activation peak is the decode step's."""
    out: set[int] = set()
    for start, end in pieces(lo, hi, breaks):
        out |= set(range(start, start + min(end - start + 1, 3))) | {end}
    return sorted(out)


__all__ = ["DecodePiece", "GenerationGrid", "traced_contexts"]
