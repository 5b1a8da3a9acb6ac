"""Kernel classes: which class of kernel an op is, for ``[efficiency.kernels]`` and the
per-class profiles. One rule, used by the roofline and by both profilers (torch, ONNX).

An op's class is its formula family (``registry.family_of``: ``aten.convolution`` -> ``conv``),
``other`` when it has no formula, except that a depthwise convolution (more than one group,
one input channel per group: :func:`modelmeter.ops.conv.is_depthwise`) is ``depthwise``: it
is not a matrix product and runs as a vector kernel; and a grouped one (more than one group,
more than one input channel per group: :func:`is_grouped`) is ``grouped``: a matrix product
per group, each too narrow for the library's dense convolution kernels (RegNet, ResNeXt).

A forward attention kernel (SDPA and the flash / efficient / cuDNN / CPU-flash kernels under
it) whose query has at most :data:`DECODE_QUERY_MAX` tokens per sequence and attends to more
keys than that is ``attention-decode``: a decode step's attention (one new token, or the few
a speculative step verifies, against the KV cache), which serving engines run as a streaming
read of the cache (flash-decoding, paged attention), not as the fused prefill kernel
(docs/hardware.md, "Decode attention"). GQA changes neither length: the rule reads the query's
and the keys' sequence dimensions, whatever their head counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelmeter.ops.conv import is_depthwise
from modelmeter.registry import Formula, family_of, lookup
from modelmeter.report import OpRecord

OTHER = "other"
DECODE = "attention-decode"
# At most this many query tokens per sequence: one row tile of the tensor cores' smallest MMA
# (m16n8k16), so the kernel holds the whole query in one tile per head and streams K and V
# past it; a decode step has 1, a speculative step's verification a few, a chunked
# prefill's chunk hundreds (the fused prefill kernel's shape).
DECODE_QUERY_MAX = 16
# The forward attention kernels the rule reads (registry formula names), and the kernels among
# them whose tensors are (batch, length, heads, dim); the others are (..., heads, length, dim).
_FORWARD = ("scaled_dot_product_attention", "attention_forward")
_SEQUENCE_FIRST = ("_flash_attention_forward", "_efficient_attention_forward")


def is_grouped(input_shapes: Sequence[Sequence[int]], groups: int | None = None) -> bool:
    """A convolution of more than one group with more than one input channel per group (not
    depthwise). Without ``groups`` the weight tells: [Co, Ci/g, *K] on an input of Ci
    channels, g = Ci / (Ci/g) > 1. From shapes alone a transposed convolution (weight
    [Ci, Co/g, *K]) with fewer output than input channels reads as grouped too."""
    x = tuple(input_shapes[0]) if input_shapes else ()
    if len(x) < 3:
        return False
    if groups is None:
        w = tuple(input_shapes[1]) if len(input_shapes) > 1 else ()
        if len(w) < 3 or w[1] < 1 or x[1] % w[1]:
            return False
        groups = x[1] // w[1]
    return 1 < groups < x[1]


def kernel_class(
    family: str | None,
    input_shapes: Sequence[Sequence[int]] = (),
    groups: int | None = None,
    *,
    unit: str | None = None,
    op: str | None = None,
) -> str:
    """The kernel class of an op of formula ``family`` (None: no formula) called on
    ``input_shapes`` (input, weight, ...) with ``groups`` where known (else read from the
    weight's shape). ``unit``, where given, is where the op's formula said it runs (an
    :class:`OpRecord`'s ``runs_on``): the formula already applied the depthwise rule with the
    call's own groups, so a convolution on the vector units is depthwise. ``op``, the op's
    key (``aten._scaled_dot_product_flash_attention``), tells an attention kernel's layout:
    without it an attention op stays ``attention``."""
    if family is None:
        return OTHER
    if family == "attention":
        return DECODE if op is not None and is_decode(op, input_shapes) else family
    if family == "conv":
        vector = unit == "vector" if unit is not None else is_depthwise(input_shapes, groups)
        if vector:
            return "depthwise"
        if is_grouped(input_shapes, groups):
            return "grouped"
    return family


def attention_lengths(op: str, shapes: Sequence[Sequence[int]]) -> tuple[float, float] | None:
    """(query tokens, key tokens) per sequence of a forward attention kernel ``op`` called on
    ``shapes`` (query, key, value, ...); None for any other op (the backward kernels, the
    fused transformer blocks) or shapes that do not say. SDPA and cuDNN's kernel take
    (..., H, L, E); ``_flash/_efficient_attention_forward`` (B, L, H, E), or a variable-length
    batch of ``total`` tokens ((total, H, E), or (1, total, H, E)) with cumulative offsets of
    B + 1 entries: B sequences of total / B tokens on average."""
    name = op.removeprefix("aten.")
    formula = lookup("aten", name)
    if not isinstance(formula, Formula) or formula.name not in _FORWARD or len(shapes) < 3:
        return None
    q, k = tuple(shapes[0]), tuple(shapes[1])
    if formula.name == "attention_forward":
        seqs = _sequences(shapes)
        if seqs and len(q) == len(k) and (len(q) == 3 or (len(q) == 4 and q[0] == 1)):
            return q[-3] / seqs, k[-3] / seqs  # variable length: total tokens / sequences
        if name in _SEQUENCE_FIRST:
            return (q[1], k[1]) if len(q) == 4 and len(k) == 4 else None
    return (q[-2], k[-2]) if len(q) >= 3 and len(k) >= 3 else None


def _sequences(shapes: Sequence[Sequence[int]]) -> int:
    """Sequences of a variable-length attention call: its cumulative query and key offsets
    are two 1-D shapes of B + 1 entries side by side after the value (an optional bias may
    come between); 0 when there are none."""
    for a, b in zip(shapes[3:], shapes[4:]):
        if len(a) == 1 and tuple(a) == tuple(b) and a[0] > 1:
            return a[0] - 1
    return 0


def is_decode(op: str, shapes: Sequence[Sequence[int]]) -> bool:
    """Whether attention kernel ``op`` on ``shapes`` is decode-shaped: at most
    :data:`DECODE_QUERY_MAX` query tokens per sequence, attending to more keys than queries
    (a cache beyond the query's own tokens; a query as long as its keys is a prefill)."""
    lengths = attention_lengths(op, shapes)
    if lengths is None:
        return False
    lq, lk = lengths
    return 0 < lq <= DECODE_QUERY_MAX and lk > lq


def kernel_taps(rec: OpRecord) -> int:
    """Taps per output of a convolution: the product of its weight's kernel dimensions
    ([Co, Ci/g, *K]: 3x3 = 9); 0 when the record has no weight of 3 or more dimensions."""
    w = rec.shapes[1] if len(rec.shapes) > 1 else ()
    return math.prod(w[2:]) if len(w) >= 3 else 0


def record_class(rec: OpRecord) -> str:
    """The kernel class of a counted op (the roofline's and the per-class comparison's)."""
    return kernel_class(family_of(rec.op), rec.shapes, unit=rec.runs_on, op=rec.op)


__all__ = ["DECODE", "DECODE_QUERY_MAX", "OTHER", "attention_lengths", "is_decode", "is_grouped",
           "kernel_class", "kernel_taps", "record_class"]
