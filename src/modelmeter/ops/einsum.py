"""Einsum.

``torch.einsum`` is composite in PyTorch 2.14: it reaches the tracer as the ops it runs --
permutes and views (free), ``sum`` over labels used by one operand only, ``mul`` for products
without a summed label, and ``bmm`` for every contraction, pairwise from left to right (unless
opt_einsum is installed and enabled, which reorders the pairs). Those ops are counted by their
own formulas, so a traced einsum costs exactly the contractions executed.

The formula below is for einsum arriving as one op (ONNX ``Einsum``, or ``aten.einsum`` should
a backend ever keep it whole). It follows the same left-to-right plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, register_op

_ELLIPSIS_LABELS = [chr(0x391 + i) for i in range(24)]  # labels no equation uses


def _expand(term: str, ndim: int | None, n_ell: int) -> str:
    if "..." not in term:
        return term
    k = n_ell if ndim is None else ndim - (len(term) - 3)
    return term.replace("...", "".join(_ELLIPSIS_LABELS[n_ell - k : n_ell]) if k else "")


def parse_equation(
    equation: str, shapes: Sequence[tuple[int, ...]]
) -> tuple[list[str], str, dict[str, int]]:
    """Operand label strings (ellipsis expanded), output labels and the size of every label
    (broadcast dimensions of size 1 take the other operands' size)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    raw = lhs.split(",")
    n_ell = max((len(s) - (len(t) - 3) for t, s in zip(raw, shapes) if "..." in t), default=0)
    terms = [_expand(t, len(s), n_ell) for t, s in zip(raw, shapes)]
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for label, dim in zip(term, shape):
            sizes[label] = max(sizes.get(label, 1), dim)
    if arrow:
        out = _expand(rhs, None, n_ell)
    else:  # implicit output: broadcast labels, then the labels used once, sorted
        counts = {c: "".join(terms).count(c) for c in set("".join(terms))}
        ell = "".join(c for c in _ELLIPSIS_LABELS[:n_ell] if c in counts)
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return terms, out, sizes


def _unique(term: str) -> str:
    return "".join(dict.fromkeys(term))  # a repeated label is a diagonal (a view)


def einsum_work(call: OpCall, equation: str, shapes: Sequence[tuple[int, ...]]) -> Work:
    """Cost of an einsum evaluated pairwise from left to right (see :func:`einsum`)."""
    terms, out, sizes = parse_equation(equation, shapes)

    def size(labels: str | set[str]) -> int:
        return math.prod(sizes[c] for c in labels)

    def reduced(term: str, needed: set[str]) -> tuple[str, int]:
        """Sum out the labels nothing else needs: n-1 adds per result."""
        kept = "".join(c for c in term if c in needed)
        return kept, (size(term) - size(kept) if len(kept) < len(term) else 0)

    ops = [_unique(t) for t in terms]
    cur, flops = reduced(ops[0], set(out).union(*ops[1:]))
    macs = 0
    for j in range(1, len(ops)):
        later = set(out).union(*ops[j + 1 :])
        other, cost = reduced(ops[j], later | set(cur))
        flops += cost
        union = _unique(cur + other)
        keep = "".join(c for c in union if c in later)
        if len(keep) < len(union):  # a contraction: sums of products
            w = mac_work(call, size(union), size(keep), bias=False)
            macs += w.macs
            flops += w.flops
        else:  # a plain (broadcast) product
            flops += size(union)
        cur = keep
    return Work(macs=macs, flops=flops)


@register_op("einsum", aten=["einsum"], onnx=["Einsum"])
def einsum(call: OpCall) -> Work:
    """Einsum as one op, contracted pairwise left to right as ``torch.einsum`` does: labels
    used by one operand only (and not by the output) are summed first (n-1 adds per result);
    each pair then costs, if some label is summed away, MACs = product of the sizes of all
    labels of the pair and exact FLOPs 2*MACs - results; if none is, one multiply per result.
    E.g. ``ij,jk->ik``: MACs i*j*k, FLOPs (2j-1)*i*k."""
    equation = str(call.arg("equation", ""))
    tensors = call.args.get("tensors")
    operands = tensors if isinstance(tensors, tuple) else call.inputs
    shapes = [t.shape for t in operands if isinstance(t, TensorMeta)]
    return einsum_work(call, equation, shapes)
