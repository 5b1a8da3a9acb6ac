"""Mixture of experts in a decode step and a prefill: the expert weights a batch reads.

A grouped matmul's operand is the stack of all E experts' weights, and the trace counts it
read whole; a kernel reads only the experts some token was routed to. A decode step runs B
tokens (one per sequence), each to k experts of each MoE layer: under uniform routing
(:data:`modelmeter.analysis.experts.ROUTING`) they touch
``D = E * (1 - ((E - k)/E)**B)`` distinct experts on average. The decode curve and the
per-op costs the roofline reads are rewritten so that each expert layer's grouped matmuls
read ``round(weight_bytes * D / E)`` weight bytes (exact rational D, rounded half up). The
weights do not change with the context, so the polynomials' constant terms change. The
traced decode Report (the phase as analyze shows it) is left as traced.

A prefill routes T = B x P tokens: the same expectation with T = B x P
(:func:`routed_prefill`) gives the expert weight bytes its grouped matmuls read (for large T
nearly E: every expert; Mixtral's 8 experts, k = 2, miss one with probability (3/4)^T, below
1e-8 from T = 65 on). The prefill's counts and the Report its time is priced from are
rewritten; the traced prefill Report is left as traced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

from modelmeter.analysis.experts import GROUPED_MM, ExpertLayer, expert_layers
from modelmeter.analysis.generation import DecodeCurve, OpCurves
from modelmeter.analysis.polynomial import Piecewise, Polynomial
from modelmeter.costs import Cost
from modelmeter.report import Report


def distinct_share(layer: ExpertLayer, tokens: int) -> Fraction:
    """D / E for ``tokens`` tokens (exact): 1 - ((E - k)/E)**T."""
    return 1 - Fraction(layer.experts - layer.top_k, layer.experts) ** tokens


def _shift(p: Polynomial, delta: int) -> Polynomial:
    coeffs = list(p.coefficients) or [Fraction(0)]
    coeffs[0] -= delta
    return Polynomial(tuple(coeffs), p.variable)


def routed_experts(decode: Report, curve: DecodeCurve, ops: OpCurves, tokens: int) -> tuple[
    DecodeCurve, int
]:  # fmt: skip
    """The curve (and, in place, the per-op curves) with the expert layers' weight reads at
    the expected distinct experts of ``tokens`` tokens; and the weight bytes saved per step
    (0 for a dense model)."""
    layers = {layer.name: layer for layer in expert_layers(decode)}
    if not layers:
        return curve, 0
    saved_by_piece = []
    for i, template in enumerate(ops.templates):
        polys = ops.polys[i]
        saved = 0
        k = 0
        for node in template.modules():
            layer = layers.get(node.name)
            for j, rec in enumerate(node.ops):
                wb = rec.cost.weight_bytes
                if layer is not None and rec.op == GROUPED_MM and wb:
                    keep = int(wb * distinct_share(layer, tokens) + Fraction(1, 2))
                    delta = wb - keep
                    c = rec.cost
                    node.ops[j] = replace(rec, cost=Cost(c.macs, c.flops, c.bytes_read - delta,
                                                         c.bytes_written, keep))  # fmt: skip
                    polys[k + 2] = _shift(polys[k + 2], delta)
                    polys[k + 4] = _shift(polys[k + 4], delta)
                    saved += delta
                k += 5
        saved_by_piece.append(saved)
    counts = dict(curve.counts)
    for name in ("bytes_read", "weight_bytes"):
        pw = counts[name]
        counts[name] = Piecewise(
            pw.starts, tuple(_shift(p, s) for p, s in zip(pw.pieces, saved_by_piece))
        )
    return replace(curve, counts=counts), saved_by_piece[0]


def routed_prefill(prefill: Report, tokens: int, copy: Callable[[], Report]) -> tuple[Report, int]:
    """The prefill Report whose expert layers' grouped matmuls read the expected distinct
    experts of ``tokens`` routed tokens (``copy()`` makes the Report to rewrite in place;
    called only for a mixture of experts), and the weight bytes saved; ``(prefill, 0)`` for
    a dense model."""
    layers = {layer.name: layer for layer in expert_layers(prefill)}
    if not layers:
        return prefill, 0
    out = copy()
    saved = 0
    for node in out.modules():
        layer = layers.get(node.name)
        if layer is None:
            continue
        for j, rec in enumerate(node.ops):
            wb = rec.cost.weight_bytes
            if rec.op == GROUPED_MM and wb:
                keep = int(wb * distinct_share(layer, tokens) + Fraction(1, 2))
                c = rec.cost
                node.ops[j] = replace(rec, cost=Cost(c.macs, c.flops, c.bytes_read - (wb - keep),
                                                     c.bytes_written, keep))  # fmt: skip
                saved += wb - keep
    return out, saved


__all__ = ["routed_experts", "routed_prefill", "distinct_share"]
