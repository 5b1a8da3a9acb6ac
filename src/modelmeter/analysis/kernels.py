"""Kernel classes: which class of kernel an op is, for ``[efficiency.kernels]`` and the
per-class profiles. One rule, used by the roofline and by both profilers (torch, ONNX).

An op's class is its formula family (``registry.family_of``: ``aten.convolution`` -> ``conv``),
``other`` when it has no formula, except that a depthwise convolution (more than one group,
one input channel per group: :func:`modelmeter.ops.conv.is_depthwise`) is ``depthwise``: it
is not a matrix product and runs as a vector kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelmeter.ops.conv import is_depthwise
from modelmeter.registry import family_of
from modelmeter.report import OpRecord

OTHER = "other"


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
    return family


def record_class(rec: OpRecord) -> str:
    """The kernel class of a counted op (the roofline's and the per-class comparison's)."""
    return kernel_class(family_of(rec.op), rec.shapes, unit=rec.runs_on)


__all__ = ["OTHER", "kernel_class", "record_class"]
