"""Turning what the user gave as inputs (tensors, shapes, ``"1x3x224x224:bf16"``) into tensors
for a meta or a real run, without touching the user's own tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modelmeter.errors import InputError
from modelmeter.shapes import parse_shape
from modelmeter.units import canonical_dtype


def torch_dtype(name: str) -> torch.dtype:
    dt = getattr(torch, canonical_dtype(name), None)
    if not isinstance(dt, torch.dtype):
        raise InputError(f"dtype {name!r} has no torch equivalent")
    return dt


@dataclass(frozen=True)
class Nested:
    """A list or tuple argument whose items are inputs (e.g. detection models take a list of
    image tensors): ``items`` normalized one by one, ``container`` is ``list`` or ``tuple``."""

    items: tuple[Any, ...]
    container: type = list


class InputSpecs:
    """Positional and keyword inputs, each a tensor, a (shape, dtype) pair, a plain Python
    value, or a :class:`Nested` list of those."""

    def __init__(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def from_user(cls, inputs: Any, kwargs: dict[str, Any] | None) -> InputSpecs:
        return cls(_normalize_positional(inputs), {k: _one(v) for k, v in (kwargs or {}).items()})

    def materialize(
        self, device: torch.device | str, real: bool, dtype: torch.dtype | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        gen = torch.Generator().manual_seed(0)  # real runs see the same random inputs every time
        args = tuple(_make(v, device, real, dtype, gen) for v in self.args)
        kwargs = {k: _make(v, device, real, dtype, gen) for k, v in self.kwargs.items()}
        return args, kwargs

    def describe(self) -> list[tuple[tuple[int, ...], str, str | None]]:
        out: list[tuple[tuple[int, ...], str, str | None]] = []
        for v in self.args:
            out.extend((shape, dt, None) for shape, dt in _flat_shape_dtypes(v))
        for k, v in self.kwargs.items():
            out.extend((shape, dt, k) for shape, dt in _flat_shape_dtypes(v))
        return out


def _normalize_positional(inputs: Any) -> list[Any]:
    if inputs is None:
        return []
    if isinstance(inputs, (torch.Tensor, str)):
        return [_one(inputs)]
    if isinstance(inputs, tuple) and inputs and all(isinstance(d, int) for d in inputs):
        return [_one(inputs)]  # a bare shape such as (1, 3, 224, 224)
    if isinstance(inputs, (list, tuple)):
        return [_one(v) for v in inputs]
    return [_one(inputs)]


def _one(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v
    if isinstance(v, str):
        shape, dtype = parse_shape(v)
        return (shape, dtype or "float32")
    if isinstance(v, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in v):
        return (tuple(v), "float32")
    if v is None or isinstance(v, (bool, int, float)):
        return v  # plain Python arguments pass through
    if isinstance(v, (list, tuple)) and v:
        # a list of inputs (shapes, tensors, nested lists) becomes a list of tensors
        return Nested(tuple(_one(x) for x in v), list if isinstance(v, list) else tuple)
    raise InputError(f"cannot use {type(v).__name__} as a model input; give a tensor or a shape")


def _flat_shape_dtypes(v: Any) -> list[tuple[tuple[int, ...], str]]:
    if isinstance(v, Nested):
        return [sd for item in v.items for sd in _flat_shape_dtypes(item)]
    return [_shape_dtype(v)]


def _shape_dtype(v: Any) -> tuple[tuple[int, ...], str]:
    if isinstance(v, torch.Tensor):
        return tuple(v.shape), str(v.dtype).removeprefix("torch.")
    if isinstance(v, tuple):
        return v[0], v[1]
    return (), type(v).__name__


def _make(
    v: Any, device: Any, real: bool, dtype: torch.dtype | None, gen: torch.Generator
) -> Any:
    if isinstance(v, Nested):
        return v.container(_make(item, device, real, dtype, gen) for item in v.items)
    if isinstance(v, torch.Tensor):
        dt = dtype if (dtype is not None and v.is_floating_point()) else v.dtype
        if real:
            return v.detach().to(device=device, dtype=dt, copy=True)
        return torch.empty(v.shape, dtype=dt, device="meta")
    if isinstance(v, tuple):
        shape, name = v
        dt = torch_dtype(name)
        if dtype is not None and dt.is_floating_point:
            dt = dtype
        if not real:
            return torch.empty(shape, dtype=dt, device="meta")
        if dt.is_floating_point or dt.is_complex:
            return torch.randn(shape, dtype=dt, generator=gen).to(device)
        return torch.zeros(shape, dtype=dt, device=device)
    return v
