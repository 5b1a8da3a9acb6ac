"""Generation as counts: a step's figures, a decode step's figures as exact piecewise
polynomials in the context, their closed-form sums, and the per-op curves the roofline is
evaluated on. Pure functions of Reports and polynomials (the use case traces).

A decode step at context ``c`` is one new token per sequence attending to a cache of ``c``
tokens. Generating G tokens after a prompt of P runs the prefill and G decode steps at
contexts P .. P+G-1 (the convention of the issue and of llm-analysis; transformers'
``generate(max_new_tokens=G)`` runs G-1 of them, the prefill giving the first token).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from modelmeter.analysis.polynomial import NotPolynomial, Piecewise, Polynomial, interpolate
from modelmeter.costs import Cost
from modelmeter.report import Report

COUNTS = (
    "macs",
    "flops",
    "bytes_read",
    "bytes_written",
    "weight_bytes",
    "kv_bytes_read",
    "kv_bytes_written",
)
_COST_FIELDS = COUNTS[:5]


@dataclass(frozen=True)
class StepCounts:
    """What one step (a prefill, or one decode step for the whole batch) costs.
    ``kv_bytes_read``/``kv_bytes_written``: the part of the bytes that are KV-cache tensors."""

    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    weight_bytes: int = 0
    kv_bytes_read: int = 0
    kv_bytes_written: int = 0

    @classmethod
    def of(cls, report: Report, kv_read: int, kv_written: int) -> StepCounts:
        c = report.total().cost
        return cls(c.macs, c.flops, c.bytes_read, c.bytes_written, c.weight_bytes,
                   kv_read, kv_written)  # fmt: skip

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNTS}


@dataclass(frozen=True)
class DecodeCurve:
    """Each count of a decode step as an exact piecewise polynomial in the context ``c``,
    valid on ``lo .. hi`` (the contexts it was fitted and checked on)."""

    counts: dict[str, Piecewise]
    lo: int
    hi: int
    traced: tuple[int, ...] = ()  # the contexts traced to find and check it

    def at(self, c: int) -> StepCounts:
        return StepCounts(**{k: _whole(p(c)) for k, p in self.counts.items()})

    def sum(self, lo: int, hi: int) -> StepCounts:
        """The counts summed over contexts ``lo .. hi``, in closed form."""
        return StepCounts(**{k: _whole(p.sum_range(lo, hi)) for k, p in self.counts.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"contexts": [self.lo, self.hi], "traced": list(self.traced),
                "counts": {k: p.to_dict() for k, p in self.counts.items()}}  # fmt: skip


def _whole(v: Fraction) -> int:
    if v.denominator != 1:
        raise NotPolynomial(f"a fitted count is not whole: {v}")
    return v.numerator


def pieces(lo: int, hi: int, breaks: Sequence[int]) -> list[tuple[int, int]]:
    """``lo .. hi`` cut at each break inside it: [(start, end)] inclusive ranges."""
    starts = sorted({lo, *(b for b in breaks if lo < b <= hi)})
    ends = [s - 1 for s in starts[1:]] + [hi]
    return list(zip(starts, ends))


def fit_contexts(start: int, end: int, max_degree: int = 1) -> list[int]:
    """The contexts ``fit_piece`` evaluates on ``start .. end`` when the fit holds: its first
    ``max_degree + 2`` points and ``end`` (how many traces a fit takes, known in advance)."""
    n = end - start + 1
    first = list(range(start, start + min(n, max_degree + 2)))
    return first + sorted({end} - set(first))


def fit_piece(
    f: Callable[[int], Sequence[int]], start: int, end: int, max_degree: int = 1
) -> tuple[list[Polynomial], list[int]]:
    """Polynomials through the values ``f(c)`` (a vector of counts) on ``start .. end``:
    each of the lowest degree its first ``max_degree + 2`` points need (the last of them
    confirms it), then checked at ``end``, never fitted on. A range of a few contexts is
    evaluated everywhere. Returns the polynomials and the contexts evaluated. A decode
    step's counts are linear in the context (attention reads c+1 keys): the default degree
    is 1, and a count that is not linear fails the checks (NotPolynomial) rather than
    being extrapolated."""
    n = end - start + 1
    fit_at = list(range(start, start + min(n, max_degree + 2)))
    values = {c: list(f(c)) for c in fit_at}
    polys = []
    for i in range(len(values[start])):
        ys = [values[c][i] for c in fit_at]
        polys.append(_lowest(fit_at, ys))
    for c in sorted({end} - set(fit_at)):
        got = list(f(c))
        for i, p in enumerate(polys):
            if _value(p, c) != got[i]:
                raise NotPolynomial(
                    f"a decode count is not a polynomial of degree <= {max_degree} in the "
                    f"context on {start}..{end}: {p.format('c')} gives {p(c)} at c={c}, "
                    f"the trace {got[i]}"
                )
        fit_at.append(c)
    return polys, fit_at


def _lowest(xs: list[int], ys: list[int]) -> Polynomial:
    """The lowest-degree polynomial through the points that the next point confirms (all
    points when none is left to confirm)."""
    if all(y == ys[0] for y in ys):  # most of a decode step's counts (what the loop returns)
        return Polynomial((ys[0],), "c")
    for d in range(len(xs)):
        p = interpolate(xs[: d + 1], ys[: d + 1], "c")
        if d + 1 == len(xs) or p(xs[d + 1]) == ys[d + 1]:
            if all(p(x) == y for x, y in zip(xs, ys)):
                return p
    return interpolate(xs, ys, "c")


def op_vector(report: Report) -> list[int]:
    """Every op's cost fields, in tree order, as one flat vector (for per-op curves)."""
    out: list[int] = []
    for node in report.modules():
        for rec in node.ops:
            c = rec.cost
            out.extend((c.macs, c.flops, c.bytes_read, c.bytes_written, c.weight_bytes))
    return out


def op_keys(report: Report) -> list[str]:
    return [rec.op for node in report.modules() for rec in node.ops]


@dataclass
class OpCurves:
    """Decode Reports whose ops' costs follow per-op polynomials in the context, one
    template per piece (a piece may run other ops: a full sliding window slices its mask):
    :meth:`report_at` gives the decode Report at any context of the range (for the
    roofline), without a trace. The templates are rewritten in place: they are copies."""

    starts: list[int] = field(default_factory=list)
    templates: list[Report] = field(default_factory=list)
    polys: list[list[Polynomial]] = field(default_factory=list)
    _cache: dict[int, list] = field(default_factory=dict, repr=False)

    def add(self, start: int, template: Report, polys: list[Polynomial]) -> None:
        self.starts.append(start)
        self.templates.append(template)
        self.polys.append(polys)

    def report_at(self, c: int) -> Report:
        i = max(j for j, s in enumerate(self.starts) if s <= c)
        template = self.templates[i]
        for node, j, polys in self._varying(i):
            node.ops[j] = replace(node.ops[j], cost=Cost(*(_at(p, c) for p in polys)))
        return template

    def nondecreasing(self, c: int) -> bool:
        """Whether no op's count decreases with the context in the piece holding ``c``."""
        i = max(j for j, s in enumerate(self.starts) if s <= c)
        return all(p.degree < 1 or p.coefficients[1] >= 0 for _, _, ps in self._varying(i)
                   for p in ps)  # fmt: skip

    def _varying(self, i: int) -> list[tuple[Any, int, list[Polynomial]]]:
        """The ops of piece ``i`` whose cost changes with the context (most do not: the
        weights' matrix products, norms ...), with their polynomials."""
        cached = self._cache.get(i)
        if cached is None:
            polys, k, cached = self.polys[i], 0, []
            for node in self.templates[i].modules():
                for j in range(len(node.ops)):
                    mine = polys[k : k + 5]
                    if any(p.degree > 0 for p in mine):
                        cached.append((node, j, mine))
                    k += 5
            self._cache[i] = cached
        return cached


def _at(p: Polynomial, c: int) -> int:
    """``p(c)`` as an int (integer coefficients evaluated without fractions)."""
    v = _value(p, c)
    return v if isinstance(v, int) else _whole(v)


def _value(p: Polynomial, c: int) -> int | Fraction:
    """``p(c)``: an int where the coefficients are whole (evaluated without fractions)."""
    if all(x.denominator == 1 for x in p.coefficients):
        acc = 0
        for x in reversed(p.coefficients):
            acc = acc * c + x.numerator
        return acc
    return p(c)


def samples(lo: int, hi: int, breaks: Sequence[int], most: int = 17) -> list[int]:
    """Contexts to evaluate a non-polynomial figure at: every one when there are few, else
    ``most`` evenly spaced from ``lo`` to ``hi`` plus both sides of every break."""
    if hi - lo + 1 <= most:
        return list(range(lo, hi + 1))
    step = (hi - lo) / (most - 1)
    out = {lo + round(i * step) for i in range(most)}
    out |= {b for x in breaks for b in (x - 1, x) if lo <= b <= hi}
    return sorted(out)


def interpolated_sum(xs: Sequence[int], ys: Sequence[float]) -> float:
    """``sum(y(c) for c in xs[0] .. xs[-1])`` with y linear between the given points."""
    total = ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        n = x1 - x0  # the points x0+1 .. x1
        total += n * y0 + (y1 - y0) * (n + 1) / 2
    return total


def kv_bytes(
    events: Sequence[Any], counted: Callable[[Any], bool], kv: Any = None
) -> tuple[int, int]:
    """(KV-cache bytes read, written) of a trace's counted op events: each distinct
    kv-tagged input once per op, every kv-tagged output; ``kv``: a KV-cache format
    (``storage.KVFormat``) to price them at, per head vector of their last dimension.
    An in-place write into the cache (a StaticCache's ``index_copy_``, ``index_put_``,
    ``scatter_``, ``copy_``) writes its update only (the source's elements) and does not
    read the cache it writes into."""

    def nbytes(t: Any, n: int | None = None) -> int:
        if n is None:
            n = t.numel if t.distinct is None else t.distinct
        if kv is None:
            return math.ceil(n * t.itemsize)
        return kv.nbytes(n, t.shape[-1] if t.shape else 1)

    read = written = 0
    for ev in events:
        if not counted(ev):
            continue
        into = _cache_written_in_place(ev)
        seen: set[tuple[int, tuple[int, ...]]] = set()
        for t in ev.call.inputs:
            if t.kv and t is not into and (t.sid, t.shape) not in seen:
                seen.add((t.sid, t.shape))
                read += nbytes(t)
        if into is not None:
            src = next((ev.call.args.get(k) for k in _SOURCES
                        if hasattr(ev.call.args.get(k), "numel")), None)  # fmt: skip
            written += nbytes(into, src.numel if src is not None else None)
            continue
        written += sum(nbytes(t) for t in ev.call.outputs if t.kv)
    return read, written


_SOURCES = ("source", "src", "values")


def _cache_written_in_place(ev: Any) -> Any:
    """The cache tensor an in-place op writes into (its kv-tagged ``self``), or None."""
    if not ev.target.split(".")[0].endswith("_"):
        return None
    target = ev.call.args.get("self")
    if target is None and ev.call.inputs:
        target = ev.call.inputs[0]
    outs = ev.call.outputs
    if target is None or not outs or not outs[0].kv:
        return None
    return target


__all__ = [
    "COUNTS",
    "StepCounts",
    "DecodeCurve",
    "OpCurves",
    "pieces",
    "fit_piece",
    "op_vector",
    "op_keys",
    "samples",
    "interpolated_sum",
    "kv_bytes",
]
