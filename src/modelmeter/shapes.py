"""Input shapes as users write them: ``"1x3x224x224"`` or ``"1x128:int64"``. Framework-free,
shared by every frontend and the command line."""

from __future__ import annotations

import re

from modelmeter.errors import InputError
from modelmeter.units import canonical_dtype

# The largest dimension and the most elements one input may have. Beyond them a tensor's
# size overflows the 64-bit sizes frameworks compute with (or no machine could hold it), so
# the request is refused here, with one clear error, before anything is allocated.
MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**40

_SHAPE = re.compile(r"^\s*(\d+(?:\s*[x×,]\s*\d+)*)\s*(?::\s*([A-Za-z0-9_.]+))?\s*$")


def parse_shape(text: str) -> tuple[tuple[int, ...], str | None]:
    """``"1x3x224x224:bf16"`` -> ((1, 3, 224, 224), "bfloat16"); the dtype is None when not
    given. Raises InputError naming the text on anything else."""
    m = _SHAPE.match(text)
    if not m:
        raise InputError(
            f"malformed input shape {text!r}: write dimensions joined by 'x', "
            "optionally ':dtype', e.g. 1x3x224x224 or 1x128:int64"
        )
    if "," in m.group(1) and re.search(r"[x×]", m.group(1)):  # two shapes, not one 6-D one
        raise InputError(
            f"malformed input shape {text!r}: it joins dimensions with both 'x' and ','; "
            "give one shape per --input (1x3x224x224 or 1,3,224,224)"
        )
    digits = re.split(r"\s*[x×,]\s*", m.group(1).strip())
    if any(len(d.lstrip("0")) > 12 for d in digits):  # int() of a huge digit string is slow; refuse it
        raise InputError(f"input {text[:60]!r}: a dimension is out of range (at most {MAX_DIM})")
    shape = check_shape(tuple(int(d) for d in digits), text)
    dtype = None
    if m.group(2):
        try:
            dtype = canonical_dtype(m.group(2))
        except ValueError as e:
            raise InputError(f"in input {text!r}: {e}") from None
    return shape, dtype


def check_shape(shape: tuple[int, ...], what: object = None) -> tuple[int, ...]:
    """``shape`` if every dimension is in 0..MAX_DIM and the element count at most
    MAX_ELEMENTS; InputError naming ``what`` (the text given, default the shape) otherwise."""
    label = repr(what if what is not None else shape)
    if len(label) > 80:
        label = label[:77] + "..."
    for d in shape:
        if d < 0:
            raise InputError(f"input shape {label} has a negative dimension")
        if d > MAX_DIM:
            raise InputError(f"input shape {label}: dimension {d} is out of range (at most {MAX_DIM})")
    elements = 1
    for d in shape:
        elements *= d
    if elements > MAX_ELEMENTS:
        raise InputError(
            f"input shape {label} has {elements:.3g} elements, more than {MAX_ELEMENTS:.3g} "
            "(2**40): no tensor that large can be made"
        )
    return shape
