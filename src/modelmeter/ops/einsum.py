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


@register_op("einsum", family="einsum", aten=["einsum"], onnx=["Einsum"])
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


@register_op("trilinear", family="einsum", aten=["_trilinear"])
def trilinear(call: OpCall) -> Work:
    """``_trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim)`` (what
    ``F.bilinear`` / ``nn.Bilinear`` run): sum over ``sumdim`` of i1*i2*i3, the inputs
    unsqueezed at their ``expand`` dims. As ATen computes it, slice by slice along
    ``unroll_dim``: first i1*i2 summed over the summed dims i3 lacks, then times i3 summed over
    the rest; each pair with a summed dim is a sum of products (MACs = product of the pair's
    broadcast sizes, exact FLOPs 2*MACs - results), without one a plain multiply (1 FLOP per
    result); a summed ``unroll_dim`` adds the slices (unroll_size - 1 adds per output).
    nn.Bilinear(I1, I2 -> O) on N rows: MACs = N*O*(I1*I2 + I2), exact FLOPs
    N*O*(2*I1*I2 + I2 - 1); the bias is a separate add."""
    i1, i2, i3 = (call.args.get(n) for n in ("i1", "i2", "i3"))
    if not all(isinstance(t, TensorMeta) for t in (i1, i2, i3)):
        i1, i2, i3 = call.inputs[0], call.inputs[1], call.inputs[2]
    exp = [set(call.arg(f"expand{j}", ())) for j in (1, 2, 3)]
    total = i1.ndim + len(exp[0])
    summed = {d % total for d in call.arg("sumdim", ())} if total else set()
    unroll = int(call.arg("unroll_dim", 1)) % total if total else 0

    def expanded(t: TensorMeta, dims: set[int]) -> list[int]:
        it = iter(t.shape)
        return [1 if d in dims else next(it) for d in range(total)]

    shapes = [expanded(t, e) for t, e in zip((i1, i2, i3), exp)]
    slices = max(s[unroll] for s in shapes) if total else 1
    for s in shapes:
        s[unroll] = 1
    sd12 = {d for d in summed if d in exp[2] and d != unroll}
    sd23 = {d for d in summed if d not in exp[2] and d != unroll}
    macs = flops = 0

    def pair(a: list[int], b: list[int], sums: set[int]) -> list[int]:
        nonlocal macs, flops
        both = [max(x, y) for x, y in zip(a, b)]
        result = [1 if d in sums else n for d, n in enumerate(both)]
        if sums:
            w = mac_work(call, math.prod(both), math.prod(result), bias=False)
            macs += w.macs
            flops += w.flops
        else:
            flops += math.prod(both)
        return result

    pair(pair(shapes[0], shapes[1], sd12), shapes[2], sd23)
    out = call.out.numel if call.outputs else 0
    extra = (slices - 1) * out if unroll in summed else 0
    return Work(macs=macs * slices, flops=flops * slices + max(0, extra))
