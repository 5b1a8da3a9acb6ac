"""What a strided view addresses: a broadcast view (a stride-0 dimension) reads each stored
element once, however many times it repeats it."""

from __future__ import annotations

import torch


def distinct(t: torch.Tensor) -> int | None:
    """Distinct elements a broadcast view (a stride-0 dimension of size > 1) addresses; None
    for every other tensor (each element its own)."""
    if t.layout != torch.strided:  # sparse and other layouts: no strides to read
        return None
    try:
        strides = t.stride()
    except (RuntimeError, NotImplementedError):
        return None
    if 0 not in strides:
        return None
    n = 1
    for size, stride in zip(t.shape, strides):
        if stride:
            n *= size
    return n if n < t.numel() else None
