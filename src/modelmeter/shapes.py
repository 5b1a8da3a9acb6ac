"""Input shapes as users write them: ``"1x3x224x224"`` or ``"1x128:int64"``. Framework-free,
shared by every frontend and the command line."""

from __future__ import annotations

import re

from modelmeter.errors import InputError
from modelmeter.units import canonical_dtype

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
    shape = tuple(int(d) for d in re.split(r"\s*[x×,]\s*", m.group(1).strip()))
    dtype = None
    if m.group(2):
        try:
            dtype = canonical_dtype(m.group(2))
        except ValueError as e:
            raise InputError(f"in input {text!r}: {e}") from None
    return shape, dtype
