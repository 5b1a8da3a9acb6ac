"""CUDA autocast's policy (``autocast_policy.py``) applied to a trace on the meta device.

PyTorch's autocast is a dispatch key, one per device type, above autograd: its kernels cast
an op's arguments and call the op again below it, so autograd records the casts (their
backward casts the gradients back) and every op inside a composite one (``cross_entropy``
into ``log_softmax`` and ``nll_loss``) meets the policy. Meta tensors carry no autocast key,
and CUDA's kernels cast only CUDA tensors. So, while :func:`autocast` is active in a thread,
this module adds one autocast key to every dispatch there — IPU's, which no kernel of the
installed PyTorch uses and no other backend here runs — and registers Python kernels at it
for the ops of the policy: the same place in the dispatch as CUDA's, the same casts. Outside
that block the key is not dispatched to; a kernel reached without an active policy calls the
op unchanged.

The casts are ``aten._to_copy`` ops, traced and counted like any other (bytes read in one
dtype, written in the other). The low-precision copies of float32 weights are cached for the
block, as autocast caches them (``CastCache``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from modelmeter.errors import InputError
from modelmeter.frontends.torch.autocast_policy import (
    BANNED_MESSAGE,
    FP32_APPEND_DTYPE,
    KINDS,
    CastCache,
    eligible,
    promoted,
    with_dtype,
)

_KEY_NAME = "AutocastIPU"
_DEVICE = "ipu"  # the device type whose autocast key that is
_KEY = getattr(torch._C.DispatchKey, _KEY_NAME)
_EXCLUDED = torch._C.DispatchKeySet(_KEY)
_LOCK = threading.Lock()
_LIBRARIES: list[Any] = []  # the registrations, kept for the life of the process
_LOCAL = threading.local()  # .caches: the active policies of this thread, innermost last


def _overload(name: str) -> Any:
    base, _, overload = name.partition(".")
    packet = getattr(torch.ops.aten, base, None)
    return None if packet is None else getattr(packet, overload or "default", None)


def _register() -> None:
    """Register the policy's kernels at the key, once per process."""
    with _LOCK:
        if _LIBRARIES:
            return
        fallback = torch.library.Library("_", "IMPL")
        fallback.fallback(torch.library.fallthrough_kernel, _KEY_NAME)
        kernels = torch.library.Library("aten", "IMPL")
        for name, kind in KINDS.items():
            op = _overload(name)
            if op is not None:  # an op this PyTorch lacks is simply not cast
                kernels.impl(name, _kernel(op, name, kind), _KEY_NAME)
        _LIBRARIES.extend((fallback, kernels))


def _kernel(op: Any, name: str, kind: str) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        caches = getattr(_LOCAL, "caches", None)
        with torch._C._ExcludeDispatchKeyGuard(_EXCLUDED):
            if not caches:
                return op(*args, **kwargs)
            return _call(op, name, kind, caches[-1], args, kwargs)

    return run


# CUDA's softmax and log_softmax of float16 asked for float32 read the half input and write
# float32 in one kernel (half_to_float); other dtypes and devices cast first
_HALF_TO_FLOAT = {
    "softmax.int": torch.ops.aten._softmax.default,
    "log_softmax.int": torch.ops.aten._log_softmax.default,
}


def _half_to_float(args: tuple, kwargs: dict) -> bool:
    dtype = args[2] if len(args) > 2 else kwargs.get("dtype")
    return args[0].dtype == torch.float16 and dtype == torch.float32


def _call(op: Any, name: str, kind: str, cache: CastCache, args: tuple, kwargs: dict) -> Any:
    """Run ``op`` as CUDA autocast runs it (autocast's own key is off meanwhile)."""
    if kind == "banned":
        raise InputError(BANNED_MESSAGE)
    if kind == "fp32_opt_dtype":
        args, kwargs = with_dtype(op, args, kwargs)
        fused = _HALF_TO_FLOAT.get(name)
        if fused is not None and _half_to_float(args, kwargs):
            dim = args[1] if len(args) > 1 else kwargs["dim"]
            return fused(args[0], dim, True)  # as CUDA runs it: no separate cast
        return op(*args, **kwargs)
    if kind == "fp32_append_dtype":
        if not (args and eligible(args[0])):
            return op(*args, **kwargs)
        if len(args) == 1 and "p" not in kwargs:
            args = (args[0], 2)  # norm's default p, which the dtype overload does not have
        typed = getattr(torch.ops.aten.norm, FP32_APPEND_DTYPE[name])
        return typed(*args, **kwargs, dtype=torch.float32)
    if kind == "low":
        dtype = cache.low
    elif kind == "fp32":
        dtype = torch.float32
    else:
        dtype = promoted(args, kwargs, cache.low)
    args = tuple(cache.cast(a, dtype) for a in args)
    kwargs = {k: cache.cast(v, dtype) for k, v in kwargs.items()}
    return op(*args, **kwargs)


@contextmanager
def autocast(low: torch.dtype) -> Iterator[CastCache]:
    """While the block runs, this thread's ops follow CUDA autocast's policy with ``low``
    (torch.bfloat16 or torch.float16) as its low precision; the cached weight casts are
    dropped at the end of the block, as autocast drops them when its region ends."""
    _register()
    cache = CastCache(low)
    caches = _LOCAL.__dict__.setdefault("caches", [])
    caches.append(cache)
    was = torch.is_autocast_enabled(_DEVICE)
    torch.set_autocast_enabled(_DEVICE, True)  # takes the key out of the excluded set
    try:
        with torch._C._IncludeDispatchKeyGuard(_KEY):
            yield cache
    finally:
        torch.set_autocast_enabled(_DEVICE, was)
        caches.remove(cache)
        cache.clear()


__all__ = ["autocast"]
