"""The decode time of G steps summed exactly over every context, without one roofline per
context.

Per op, the roofline time at context ``c`` is ``max(compute(c), memory(c)) + overhead``;
within a piece (no sliding-window break inside) the op's counts are linear in ``c``, so
``compute(c) - memory(c)`` is linear and changes sign at most once (at ``c*``). Where the
chip overlaps launches with execution (GPUs) the overhead is the queue's wait,
``max(0, issued_i - finish_{i-1}(c))``: ``issued_i`` does not depend on ``c`` and
``finish_{i-1}`` does not decrease with ``c`` when no count does, so each wait is positive on
a prefix of the range and zero after. The *signature* of a context (per op: compute-bound or
not, waited or not) is therefore a vector of indicators that each change at most once; on a
range whose two ends have the same signature, every indicator is constant, every op's time
is affine in ``c`` and so is their sum: ``sum_{c=x0}^{x1} T(c) = (x1-x0+1)(T(x0)+T(x1))/2``.
Ranges whose ends differ are bisected (on integers: the exact crossing context is found) until
they agree. Exact up to float rounding of the roofline's own figures (the sum of affine
pieces is closed-form; nothing is interpolated). Where a count decreases with the context
(none does in a decode step) the indicators are no longer known to be monotone: that
piece is evaluated at every context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modelmeter.analysis.roofline import Roofline
from modelmeter.analysis.roofline_total import StepTime

Signature = tuple[tuple[bool, bool], ...]


def signature(r: Roofline | StepTime) -> Signature:
    """Per op (tree order): compute-bound or not, and whether the device waited for it (the
    host's share of its overhead is not zero)."""
    if isinstance(r, StepTime):
        return r.signature
    return tuple((t.compute_s >= t.memory_s, t.host_s > 0) for t in r.ops)


@dataclass
class ExactSum:
    """Evaluations made: context -> (decode step time, signature); ``total``: the sum."""

    seen: dict[int, tuple[float, Signature]] = field(default_factory=dict)
    total: float = 0.0


def exact_sum(
    evaluate: Callable[[int], Roofline | StepTime],
    seeds: Sequence[int],
    monotone: Callable[[int], bool] = lambda c: True,
) -> ExactSum:
    """``sum(evaluate(c).latency_s for c in seeds[0] .. seeds[-1])`` exactly (module
    docstring). ``seeds``: sorted contexts evaluated first, including both sides of every
    break where the op list or the counts' polynomials change (so no gap between two seeds
    straddles one); ``monotone(c)``: whether the counts of the piece holding ``c`` do not
    decrease with the context (else its gaps are evaluated at every context)."""
    out = ExactSum()

    def at(c: int) -> tuple[float, Signature]:
        if c not in out.seen:
            r = evaluate(c)
            out.seen[c] = (r.latency_s, signature(r))
        return out.seen[c]

    def inside(x0: int, x1: int) -> float:
        """The sum over x0+1 .. x1-1."""
        if x1 - x0 <= 1:
            return 0.0
        (t0, s0), (t1, s1) = at(x0), at(x1)
        if s0 == s1 and monotone(x0):
            return (x1 - x0 - 1) * (t0 + t1) / 2
        mid = (x0 + x1) // 2
        return inside(x0, mid) + at(mid)[0] + inside(mid, x1)

    xs = sorted(set(seeds))
    total = sum(at(c)[0] for c in xs)
    for x0, x1 in zip(xs, xs[1:]):
        total += inside(x0, x1)
    out.total = total
    return out


__all__ = ["ExactSum", "Signature", "exact_sum", "signature"]
