"""Scaled dot-product attention on the meta device as the fused kernel a real device runs.

``F.scaled_dot_product_attention`` picks its kernel by device: on a CPU or a CUDA GPU the
common cases run one fused kernel (``_scaled_dot_product_flash_attention_for_cpu``, flash or
memory-efficient attention), which never writes the score matrices; only on the meta device,
where the analysis traces, does PyTorch fall back to the math path (scaled ``bmm``, softmax,
``bmm``, and float32 upcasts for half precision). Its FLOPs are nearly the same, its bytes are
not: for ViT-B/16 in bfloat16 at batch 64 the math path moved 9 GB more per forward than the
fused kernel reads and writes.

While a meta trace runs, :func:`fused_attention` puts a wrapper in place of
``torch.nn.functional.scaled_dot_product_attention`` that sends the cases PyTorch's CPU
backend runs fused (4-D query, key and value with one head size, no dropout; masks, causal
and GQA included) to ``_scaled_dot_product_flash_attention_for_cpu``, whose meta kernel gives
the output and whose formula counts the fused cost (``ops/attention.py``). Everything else
goes to the original function. A boolean mask is first made additive with one ``where``, as
the CPU backend does. Code that imported the function by name before the trace keeps the
original (the math path), as before. The wrapper is removed when the trace ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

_NAMES = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_DEFAULTS: dict[str, Any] = {
    "attn_mask": None,
    "dropout_p": 0.0,
    "is_causal": False,
    "scale": None,
    "enable_gqa": False,
}
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """SDPA's arguments by name (None when they do not fit its signature)."""
    if len(args) > len(_NAMES) or any(k not in _NAMES for k in kwargs):
        return None
    bound = {**_DEFAULTS, **dict(zip(_NAMES, args)), **kwargs}
    return bound if all(n in bound for n in _NAMES[:3]) else None


def fusable(bound: dict[str, Any]) -> bool:
    """Whether PyTorch's CPU backend would run this call as its fused kernel."""
    q, k, v, mask = bound["query"], bound["key"], bound["value"], bound["attn_mask"]
    tensors = (q, k, v) if mask is None else (q, k, v, mask)
    if not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors):
        return False
    if not (q.dim() == k.dim() == v.dim() == 4) or q.dtype not in _FLOATS:
        return False
    if not (q.dtype == k.dtype == v.dtype) or q.shape[-1] != k.shape[-1] or v.shape[-1] != q.shape[-1]:
        return False
    heads_q, heads_kv = q.shape[1], k.shape[1]
    if heads_kv != heads_q and not (bound["enable_gqa"] and heads_q % heads_kv == 0):
        return False
    if float(bound["dropout_p"] or 0.0) > 0.0 or (bound["is_causal"] and mask is not None):
        return False
    return mask is None or mask.dtype == torch.bool or mask.dtype == q.dtype


def _fused(bound: dict[str, Any]) -> torch.Tensor:
    q, mask = bound["query"], bound["attn_mask"]
    if mask is not None and mask.dtype == torch.bool:  # True keeps a score, False masks it
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        mask = torch.where(mask, zero, torch.full((), float("-inf"), dtype=q.dtype, device=q.device))
    out, _ = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q,
        bound["key"],
        bound["value"],
        0.0,
        bool(bound["is_causal"]),
        attn_mask=mask,
        scale=bound["scale"],
    )
    return out


@contextmanager
def fused_attention() -> Iterator[None]:
    """For the duration of a meta trace: fusable SDPA calls run as the fused kernel."""
    original = F.scaled_dot_product_attention

    def scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Any:
        bound = _bind(args, kwargs)
        if bound is not None and fusable(bound):
            return _fused(bound)
        return original(*args, **kwargs)

    scaled_dot_product_attention.__doc__ = original.__doc__
    F.scaled_dot_product_attention = scaled_dot_product_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


__all__ = ["fused_attention", "fusable"]
