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
goes to the original function (:func:`fusable` lists the conditions; a test compares them
with real CPU runs). A boolean mask is first made additive with one ``where``, as the CPU
backend does. Code that imported the function by name before the trace keeps the original
(the math path), as before. The wrapper is removed when the last running trace ends, and
it fuses only in the threads running a meta trace: another thread calling SDPA meanwhile
(a real-mode trace, the user's own code) gets the original function's behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from modelmeter.frontends.torch.fused_rnn import fused_lstm
from modelmeter.frontends.torch.shared_patch import SharedPatch

# SDPA's signature: the first six may be positional, scale and enable_gqa are keyword-only
_POSITIONAL = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
_NAMES = (*_POSITIONAL, "scale", "enable_gqa")
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
    if len(args) > len(_POSITIONAL) or any(k not in _NAMES for k in kwargs):
        return None
    if any(k in kwargs for k in _POSITIONAL[: len(args)]):
        return None  # given twice: let the real function raise
    bound = {**_DEFAULTS, **dict(zip(_POSITIONAL, args)), **kwargs}
    return bound if all(n in bound for n in _POSITIONAL[:3]) else None


def fusable(bound: dict[str, Any]) -> bool:
    """Whether PyTorch's CPU backend would run this call as its fused kernel: meta tensors,
    4-D query, key and value with equal batch sizes, one head size, unit stride in the last
    dimension and no empty sequence; key and value heads equal to the query's (or dividing
    them, with ``enable_gqa``); no dropout; no mask together with ``is_causal``; a boolean or
    floating mask of 2 or 4 dimensions that no gradient flows into."""
    q, k, v, mask = bound["query"], bound["key"], bound["value"], bound["attn_mask"]
    tensors = (q, k, v) if mask is None else (q, k, v, mask)
    if not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors):
        return False
    if any(t.is_nested or t.layout != torch.strided for t in tensors):
        return False
    if not (q.dim() == k.dim() == v.dim() == 4) or q.dtype not in _FLOATS:
        return False
    if not (q.dtype == k.dtype == v.dtype) or not (q.shape[0] == k.shape[0] == v.shape[0]):
        return False
    if not (q.shape[-1] == k.shape[-1] == v.shape[-1]) or k.shape[-2] != v.shape[-2]:
        return False
    if any(t.numel() == 0 or t.stride(-1) != 1 for t in (q, k, v)):
        return False
    heads_q, heads_kv = q.shape[1], k.shape[1]
    if v.shape[1] != heads_kv:
        return False
    if heads_kv != heads_q and not (bound["enable_gqa"] and heads_q % heads_kv == 0):
        return False
    if float(bound["dropout_p"] or 0.0) > 0.0 or (bound["is_causal"] and mask is not None):
        return False
    if mask is None:
        return True
    if mask.dim() not in (2, 4) or mask.requires_grad:
        return False  # the fused kernel has no gradient for a mask (a learned bias)
    return mask.dtype == torch.bool or mask.dtype in _FLOATS


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask (True keeps a score) as the additive one the fused kernel takes, made
    as the CPU backend makes it: one ``where`` between two scalars, which are created
    without being traced (the backend makes them as wrapped numbers)."""
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        minus_inf = torch.full((), float("-inf"), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, minus_inf)


def _fused(bound: dict[str, Any]) -> torch.Tensor:
    q, mask = bound["query"], bound["attn_mask"]
    if mask is not None and mask.dtype == torch.bool:
        mask = _additive(mask, q.dtype)
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


def _scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Any:
    bound = _bind(args, kwargs) if _PATCH.tracing else None
    if bound is not None and fusable(bound):
        return _fused(bound)
    return _PATCH.saved(*args, **kwargs)


_PATCH = SharedPatch(F, "scaled_dot_product_attention", _scaled_dot_product_attention)


_scaled_dot_product_attention.__doc__ = F.scaled_dot_product_attention.__doc__


@contextmanager
def fused_attention() -> Iterator[None]:
    """For the duration of a meta trace: fusable SDPA calls run as the fused kernel. Traces
    in several threads share one installation; the last to end restores the original."""
    with _PATCH.installed(), fused_lstm():  # and nn.LSTM as oneDNN's layers (fused_rnn.py)
        yield


__all__ = ["fused_attention", "fusable"]
