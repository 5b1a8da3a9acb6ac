"""What the ONNX walk knows of each value (:class:`Val`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Val:
    """What the walk knows of a value: its shape (ints, symbols or None), dtype, storage id,
    whether it is (read as) a parameter/buffer, and whether it is known at load time."""

    dims: tuple[Any, ...] | None
    dtype: str
    sid: int
    weight: bool = False
    const: bool = False

    @property
    def complete(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) for d in self.dims)


__all__ = ["Val"]
