"""Analysing a model as integer-quantised (``--dtype int8``) although PyTorch has no integer
kernel for many of its ops (``mean`` in a pooling, ``softmax``, ``layer_norm`` ...).

The pass runs in float32, the *stand-in*: the same ops on the same shapes, so MACs and FLOPs
equal the floating-point analysis exactly. Every float32 tensor is then labelled and charged as
the integer dtype (weights, activations and outputs one byte each for int8, as an int8 NPU
stores them; its accumulators stay inside the MAC units and are not written). Each op is tried
once on meta tensors of the integer dtype; those PyTorch refuses are listed in a report note,
since they were counted as if an integer kernel existed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._pytree import tree_map

from modelmeter.frontends.torch.lifetimes import Lifetimes
from modelmeter.frontends.torch.tracer import OpTracer, dtype_name
from modelmeter.registry import TensorMeta

STAND_IN = torch.float32


def integer(cast: torch.dtype | None) -> torch.dtype | None:
    """``cast`` when it is an integer dtype (analysed through the stand-in), else None."""
    if cast is None or cast.is_floating_point or cast.is_complex or cast == torch.bool:
        return None
    return cast


def charged(t: torch.Tensor, as_dtype: torch.dtype | None) -> int:
    """Bytes of ``t`` as analysed: a stand-in tensor's elements at ``as_dtype``'s size."""
    if as_dtype is not None and t.dtype == STAND_IN:
        return t.numel() * as_dtype.itemsize
    return t.numel() * t.element_size()


class StandInLifetimes(Lifetimes):
    """Activation bytes with stand-in storages charged at the integer dtype's size."""

    def __init__(self, excluded: set[int], as_dtype: torch.dtype) -> None:
        super().__init__(excluded)
        self.ratio = (as_dtype.itemsize, STAND_IN.itemsize)

    def nbytes(self, t: torch.Tensor) -> int:
        n = super().nbytes(t)
        return n * self.ratio[0] // self.ratio[1] if t.dtype == STAND_IN else n


class StandInTracer(OpTracer):
    """The tracer with stand-in tensors labelled as the integer dtype, and the ops that have
    no kernel for it collected in ``assumed`` (in the order first met)."""

    def __init__(self, *args: Any, as_dtype: torch.dtype, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.as_dtype = as_dtype
        self.label = dtype_name(as_dtype)
        self.assumed: dict[str, None] = {}
        self._probed: dict[Any, bool] = {}

    def _relabel(self, m: TensorMeta) -> TensorMeta:
        return replace(m, dtype=self.label) if m.dtype == dtype_name(STAND_IN) else m

    def _meta(self, t: torch.Tensor) -> TensorMeta:
        return self._relabel(super()._meta(t))

    def _emit(self, func: Any, target: str, args: tuple, kwargs: dict, out: Any) -> None:
        first = len(self.events)
        super()._emit(func, target, args, kwargs, out)
        for i in range(first, len(self.events)):
            ev = self.events[i]
            outs = tuple(self._relabel(m) for m in ev.call.outputs)
            self.events[i] = replace(ev, call=replace(ev.call, outputs=outs))
        ok = self._probed.get(func)
        if ok is None:
            ok = self._probed[func] = _has_kernel(func, args, kwargs, self.as_dtype)
        if not ok:
            self.assumed[target] = None


_CPU_PROBE = 1 << 22  # elements: ops this small are also tried on the CPU's kernels


def _has_kernel(func: Any, args: tuple, kwargs: dict, as_dtype: torch.dtype) -> bool:
    """Whether PyTorch runs ``func`` with its stand-in tensors in ``as_dtype``: on meta (which
    checks few dtypes), then, for calls up to ``_CPU_PROBE`` elements, on CPU zeros."""
    sizes: list[int] = []

    def swap(v: Any, device: str) -> Any:
        if isinstance(v, torch.Tensor):
            sizes.append(v.numel())
            dt = as_dtype if v.dtype == STAND_IN else v.dtype
            return torch.zeros(tuple(v.shape), dtype=dt, device=device)
        return v

    swap_to = {d: (lambda v, d=d: swap(v, d)) for d in ("meta", "cpu")}
    with _disable_current_modes():
        for device in ("meta", "cpu"):
            if device == "cpu" and sum(sizes) > _CPU_PROBE:
                break
            try:
                func(*tree_map(swap_to[device], args), **tree_map(swap_to[device], kwargs))
            except Exception:  # noqa: BLE001 - any refusal means no kernel for the dtype
                return False
    return True


def assumed_note(ops: list[str], as_dtype: torch.dtype) -> str:
    """The report note naming the ops counted as if they had an integer kernel."""
    name = dtype_name(as_dtype)
    return (
        f"analysed as {name}: weights and activations {as_dtype.itemsize} "
        f"byte{'s' if as_dtype.itemsize > 1 else ''} each; "
        f"PyTorch has no {name} kernel for {', '.join(ops)}, counted as if it had one (the "
        "same MACs and FLOPs as in floating point)"
    )
