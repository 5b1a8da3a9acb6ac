"""A whole Report as exact polynomials in its input sizes: every op's MACs, FLOPs, bytes and
shapes, every module's output shapes and the totals, fitted together
(:func:`~modelmeter.analysis.multifit.fit_grid`) from a few traces. Where every figure is a
polynomial and the model's ops are the same at every size, :meth:`ReportFormula.report_at`
gives the Report at any size without tracing (the roofline, the table and the JSON then work
on it as on a traced one); the totals' formulas (:attr:`ReportFormula.counts`) are printed
and kept in JSON, each refused on its own when it is not a polynomial.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from modelmeter.analysis.multifit import GridFit, Point, fit_grid, maximum
from modelmeter.analysis.polynomial import Maximum, MultiPolynomial, NotPolynomial
from modelmeter.costs import Cost
from modelmeter.report import InputSpec, ModuleNode, Report

COUNTS = (
    "params",
    "macs",
    "flops",
    "bytes_read",
    "bytes_written",
    "weight_bytes",
    "activation_bytes",
    "peak_activation_bytes",
)
PEAK = "peak_activation_bytes"
COST_FIELDS = ("macs", "flops", "bytes_read", "bytes_written", "weight_bytes")


def structure(report: Report) -> tuple[Any, ...]:
    """What must not change between sizes for one template to describe them all: the module
    tree, each op's name, phase, dtype, unit and shape ranks, the inputs' ranks and dtypes."""
    nodes = tuple(
        (
            n.name, n.type, n.depth, n.calls, n.own, tuple(len(s) for s in n.output_shapes),
            tuple(sorted(n.unsupported.items())),
            tuple((o.op, o.phase, o.dtype, o.unit, tuple(len(s) for s in o.shapes)) for o in n.ops),
        )
        for n in report.modules()
    )  # fmt: skip
    inputs = tuple((i.name, i.dtype, len(i.shape)) for i in report.inputs)
    head = (report.model, report.frontend, report.convention, report.mode, tuple(report.notes))
    return head, inputs, nodes


def totals(report: Report) -> list[int]:
    """The report's totals in :data:`COUNTS` order (all phases)."""
    t = report.total()
    c = t.cost
    return [
        t.params, c.macs, c.flops, c.bytes_read, c.bytes_written, c.weight_bytes,
        t.activation_bytes, t.peak_activation_bytes,
    ]  # fmt: skip


def values(report: Report) -> list[int]:
    """Every number of the report that may depend on the size, in one fixed order: the
    totals, then the inputs' dimensions, then per module its output shapes and per op its
    cost and shapes (the order :func:`_rebuild` reads them back in)."""
    out = totals(report)
    for spec in report.inputs:
        out.extend(spec.shape)
    for node in report.modules():
        for shape in node.output_shapes:
            out.extend(shape)
        for op in node.ops:
            out.extend(getattr(op.cost, f) for f in COST_FIELDS)
            for shape in op.shapes:
                out.extend(shape)
    return out


@dataclass
class ReportFormula:
    """The fit of a Report over its sizes. ``template``: the Report traced at the first
    fitted point; ``fit``: the polynomials of :func:`values`; ``complete``: whether every
    value is a polynomial (then :meth:`report_at` works)."""

    template: Report
    fit: GridFit
    full: bool = True  # every figure fitted (else the totals only)
    timeline: int = 0  # the last components: the live bytes over the run (the peak's moments)

    @property
    def variables(self) -> tuple[str, ...]:
        return self.fit.variables

    @property
    def complete(self) -> bool:
        """Whether every figure of the report has a formula (then :meth:`report_at` works)."""
        return self.full and self.totals_complete and not any(
            c in self.fit.refused for c in range(self.fit.size - self.timeline)
            if c != COUNTS.index(PEAK)
        )  # fmt: skip

    @property
    def traces(self) -> int:
        """How many sizes were traced to find and check the formula."""
        return len(self.fit.values)

    @property
    def counts(self) -> dict[str, MultiPolynomial | Maximum | str]:
        """Each total's polynomial, or why it has none. The activation peak is a maximum over
        the run: the largest of the live bytes' polynomials at each of its moments."""
        out: dict[str, MultiPolynomial | Maximum | str] = {}
        for i, name in enumerate(COUNTS):
            try:
                out[name] = self.fit.polynomial(i)
            except NotPolynomial as e:
                out[name] = str(e)
        out[PEAK] = self.peak
        return out

    @cached_property
    def peak(self) -> Maximum | str:
        """The activation peak as the maximum of the run's live bytes, or why there is none."""
        moments = range(self.fit.size - self.timeline, self.fit.size)
        refused = [self.fit.refused[c] for c in moments if c in self.fit.refused]
        if not self.timeline or refused:
            why = refused[0] if refused else "the frontend does not record the live bytes"
            return f"a maximum over the run, not a polynomial in general; {why}"
        return maximum(self.fit, moments)

    @property
    def totals_complete(self) -> bool:
        """Whether every total has a formula (then :meth:`totals_at` gives them all)."""
        peak = COUNTS.index(PEAK)
        return not isinstance(self.peak, str) and not any(
            i in self.fit.refused for i in range(len(COUNTS)) if i != peak
        )

    def totals_at(self, point: Point) -> dict[str, int | None]:
        """The totals at ``point`` (None for a count that has no formula)."""
        got = self.fit.evaluate(point, len(COUNTS))
        out = {name: _whole(v) for name, v in zip(COUNTS, got)}
        if point not in self.fit.values:  # traced points keep the traced peak
            out[PEAK] = None if isinstance(self.peak, str) else self.peak.at(*point)
        return out

    def report_at(self, point: Point) -> Report:
        """The Report at ``point``, from the polynomials; NotPolynomial when some figure of
        the report has none."""
        if not self.complete:
            reasons = sorted(set(self.fit.refused.values())) or ["only the totals were fitted"]
            reasons = reasons if self.full else ["only the totals were fitted"]
            raise NotPolynomial(f"not every figure of the report is a polynomial: {reasons[0]}")
        numbers = [_whole(v) for v in self.fit.evaluate(point)]
        numbers = numbers[: len(numbers) - self.timeline]
        if point not in self.fit.values:
            numbers[COUNTS.index(PEAK)] = self.peak.at(*point)  # type: ignore[union-attr]
        if any(v is None for v in numbers):
            raise NotPolynomial(f"a figure is not whole at {point}")
        return _rebuild(self.template, iter(numbers))  # type: ignore[arg-type]


def _whole(v: Fraction | None) -> int | None:
    return None if v is None or v.denominator != 1 else v.numerator


def _rebuild(template: Report, numbers: Any) -> Report:
    head = [next(numbers) for _ in COUNTS]
    inputs = [
        InputSpec(tuple(next(numbers) for _ in s.shape), s.dtype, s.name) for s in template.inputs
    ]

    def node(n: ModuleNode) -> ModuleNode:
        shapes = [[next(numbers) for _ in s] for s in n.output_shapes]
        ops = []
        for o in n.ops:
            cost = Cost(*(next(numbers) for _ in COST_FIELDS))
            op_shapes = tuple(tuple(next(numbers) for _ in s) for s in o.shapes)
            ops.append(replace(o, cost=cost, shapes=op_shapes))
        out = replace(n, output_shapes=shapes, ops=ops, unsupported=dict(n.unsupported),
                      children=[])  # fmt: skip
        out.children = [node(c) for c in n.children]
        return out

    root = node(template.root)
    return replace(
        template,
        inputs=inputs,
        root=root,
        activation_bytes=head[COUNTS.index("activation_bytes")],
        peak_activation_bytes=head[COUNTS.index("peak_activation_bytes")],
        notes=list(template.notes),
    )


def fit_report(
    trace: Callable[[Point], Report],
    variables: Sequence[str],
    points: Sequence[Sequence[int]],
    max_degrees: Sequence[int],
    *,
    checks: Sequence[Point] = (),
    full: bool = True,
    timeline: Callable[[Point], Sequence[int]] | None = None,
) -> ReportFormula:
    """Trace the model at as few sizes as the degrees need (``trace(point)``), fit every
    figure of its Report (``full``; else only the totals) and check the fit where it was not
    fitted. A trace whose ops differ from the first one's leaves only the totals to fit."""
    first: list[Report] = []
    moments: list[int] = []  # the first trace's number of timeline moments

    def vector(point: Point) -> list[int | None]:
        report = trace(point)
        live = list(timeline(point)) if timeline else []
        if not first:
            first.append(report)
            moments.append(len(live))
        if len(live) != moments[0]:  # the run allocates differently: no moment to follow
            live = [None] * moments[0]  # type: ignore[list-item]
        if not full:
            return [*totals(report), *live]
        if structure(report) == structure(first[0]):
            return [*values(report), *live]
        n = len(values(first[0])) - len(COUNTS)
        return [*totals(report), *([None] * n), *live]

    fitted = fit_grid(vector, variables, points, max_degrees, checks=checks)
    return ReportFormula(first[0], fitted, full, moments[0])


__all__ = ["COUNTS", "ReportFormula", "fit_report", "structure", "totals", "values"]
