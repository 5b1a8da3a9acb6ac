"""Which ops normalise a tensor over its last axis (its features): a layer or RMS norm, or
the mean / variance over the last dimension that a hand-written RMSNorm computes
(``x.pow(2).mean(-1, keepdim=True)``). Under tensor parallelism such an op needs the whole
feature axis, so a linear whose output features it normalises cannot be column-split without
a gather (``frontends/torch/tp_region.py``, ``analysis/latent_split.py``)."""

from __future__ import annotations

from typing import Any

_NORMS = frozenset({"native_layer_norm", "layer_norm", "rms_norm", "_fused_rms_norm"})
_REDUCTIONS = frozenset({"mean", "var", "var_mean", "std", "std_mean"})


def normalises_features(op: str, dims: Any, ndim: int) -> bool:
    """Whether op ``op`` (an aten name without overload) with reduction ``dims`` (an int, a
    list of them or None) on a tensor of ``ndim`` dimensions normalises its last axis."""
    if op in _NORMS:
        return True
    if op not in _REDUCTIONS or dims is None or ndim < 1:
        return False
    dims = [dims] if isinstance(dims, int) else list(dims)
    return any(d in (-1, ndim - 1) for d in dims if isinstance(d, int)) and len(dims) == 1


def feature_rows(shape: Any) -> int:
    """The rows (tokens) of a tensor of ``shape`` whose last axis is features: the product
    of the other dimensions."""
    n = 1
    for d in tuple(shape)[:-1]:
        n *= int(d)
    return n


__all__ = ["feature_rows", "normalises_features"]
