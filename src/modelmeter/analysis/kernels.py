"""Kernel classes: which class of kernel an op is, for ``[efficiency.kernels]`` and the
per-class profiles. One rule, used by the roofline and by both profilers (torch, ONNX).

An op's class is its formula family (``registry.family_of``: ``aten.convolution`` -> ``conv``),
``other`` when it has no formula, except that a depthwise convolution (more than one group,
one input channel per group: :func:`modelmeter.ops.conv.is_depthwise`) is ``depthwise``: it
is not a matrix product and runs as a vector kernel; and a grouped one (more than one group,
more than one input channel per group: :func:`is_grouped`) is ``grouped``: a matrix product
per group, each too narrow for the library's dense convolution kernels (RegNet, ResNeXt).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelmeter.ops.conv import is_depthwise
from modelmeter.registry import family_of
from modelmeter.report import OpRecord

OTHER = "other"


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
) -> str:
    """The kernel class of an op of formula ``family`` (None: no formula) called on
    ``input_shapes`` (input, weight, ...) with ``groups`` where known (else read from the
    weight's shape). ``unit``, where given, is where the op's formula said it runs (an
    :class:`OpRecord`'s ``runs_on``): the formula already applied the depthwise rule with the
    call's own groups, so a convolution on the vector units is depthwise."""
    if family is None:
        return OTHER
    if family == "conv":
        vector = unit == "vector" if unit is not None else is_depthwise(input_shapes, groups)
        if vector:
            return "depthwise"
        if is_grouped(input_shapes, groups):
            return "grouped"
    return family


def kernel_taps(rec: OpRecord) -> int:
    """Taps per output of a convolution: the product of its weight's kernel dimensions
    ([Co, Ci/g, *K]: 3x3 = 9); 0 when the record has no weight of 3 or more dimensions."""
    w = rec.shapes[1] if len(rec.shapes) > 1 else ()
    return math.prod(w[2:]) if len(w) >= 3 else 0


def record_class(rec: OpRecord) -> str:
    """The kernel class of a counted op (the roofline's and the per-class comparison's)."""
    return kernel_class(family_of(rec.op), rec.shapes, unit=rec.runs_on)


__all__ = ["OTHER", "is_grouped", "kernel_class", "kernel_taps", "record_class"]
