"""Turning an :class:`~modelmeter.inputs.InputRequest` (shapes, given tensors, plain values,
nested lists of those) into tensors for a meta or a real run, without touching the user's own
tensors.

A given tensor takes the request's ``batch`` as its first dimension: on meta an empty tensor
of shape ``(batch, *rest)``; in a real run a copy whose rows are the given rows repeated
cyclically (so indices and masks stay valid). 0-d tensors and plain values are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modelmeter.errors import InputError
from modelmeter.inputs import InputItem, InputRequest, NestedInput, ShapeInput
from modelmeter.units import canonical_dtype


def refuse_dims(request: InputRequest) -> None:
    """Symbolic dimensions are the ONNX frontend's; a PyTorch model has none to set."""
    if request.dims:
        raise InputError("--dim/dims only applies to ONNX models (named dimensions)")


def torch_dtype(name: str) -> torch.dtype:
    dt = getattr(torch, canonical_dtype(name), None)
    if not isinstance(dt, torch.dtype):
        raise InputError(f"dtype {name!r} has no torch equivalent")
    return dt


def cast_dtype(name: str) -> torch.dtype:
    """The torch dtype weights and floating inputs are cast to for ``--dtype``/``dtype=``;
    InputError where PyTorch has the dtype but cannot convert to it (int4, int2, ...)."""
    dt = torch_dtype(name)
    try:
        torch.zeros(1).to(dt)
    except (RuntimeError, NotImplementedError):
        raise InputError(
            f"PyTorch cannot convert tensors to {canonical_dtype(name)}: analyse in another "
            "dtype (int8, fp8, bf16, ...), or give the model as ONNX"
        ) from None
    return dt


@dataclass(frozen=True)
class Nested:
    """A list, tuple or dict argument whose items are inputs (e.g. detection models take a
    list of image tensors): ``items`` converted one by one, ``container`` is ``list``,
    ``tuple`` or ``dict`` (whose ``keys`` name the items)."""

    items: tuple[Any, ...]
    container: type = list
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Given:
    """A tensor the user gave; ``batch``: its first dimension in the run (None: as given)."""

    tensor: torch.Tensor
    batch: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        shape = tuple(self.tensor.shape)
        if self.batch is None or not shape:
            return shape
        return (self.batch, *shape[1:])


@dataclass(frozen=True)
class Shaped:
    """An input given by its shape, made as random (real) or empty (meta) tensors."""

    shape: tuple[int, ...]
    dtype: str = "float32"


class InputSpecs:
    """Positional and keyword inputs, each a :class:`Given` tensor, a :class:`Shaped` input,
    a plain Python value, or a :class:`Nested` list of those."""

    def __init__(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def from_request(cls, request: InputRequest) -> InputSpecs:
        """The inputs of ``request``, with its batch applied to the given tensors."""
        if not request.given:
            raise InputError("no inputs given: pass a tensor or a shape such as '1x3x224x224'")
        batch = request.batch
        return cls(
            [_spec(item, batch) for item in request.args],
            {k: _spec(item, batch) for k, item in request.kwargs.items()},
        )

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


def _spec(item: InputItem, batch: int | None) -> Any:
    if isinstance(item, NestedInput):
        inner = None if item.container is list else batch  # a list's length is its batch
        return Nested(tuple(_spec(i, inner) for i in item.items), item.container, item.keys)
    if isinstance(item, ShapeInput):
        return Shaped(item.shape, item.dtype or "float32")  # shapes are batched already
    value = item.value
    if isinstance(value, torch.Tensor):
        return Given(value, batch if value.dim() > 0 else None)
    if value is None or isinstance(value, (bool, int, float)):
        return value  # plain Python arguments pass through
    raise InputError(
        f"cannot use {type(value).__name__} as a model input; give a tensor or a shape"
    )


def _flat_shape_dtypes(v: Any) -> list[tuple[tuple[int, ...], str]]:
    if isinstance(v, Nested):
        return [sd for item in v.items for sd in _flat_shape_dtypes(item)]
    if isinstance(v, Given):
        return [(v.shape, str(v.tensor.dtype).removeprefix("torch."))]
    if isinstance(v, Shaped):
        return [(v.shape, v.dtype)]
    return [((), type(v).__name__)]


def _given(v: Given, device: Any, real: bool, dtype: torch.dtype | None) -> torch.Tensor:
    t = v.tensor
    dt = dtype if (dtype is not None and t.is_floating_point()) else t.dtype
    if not real:
        return torch.empty(v.shape, dtype=dt, device="meta")
    if v.batch is None:
        return t.detach().to(device=device, dtype=dt, copy=True)
    if t.shape[0] == 0:
        raise InputError(f"cannot set the batch to {v.batch}: a given tensor has no rows")
    rows = torch.arange(v.batch, device=t.device) % t.shape[0]
    return t.detach()[rows].to(device=device, dtype=dt)  # indexing copies


def _make(
    v: Any, device: Any, real: bool, dtype: torch.dtype | None, gen: torch.Generator
) -> Any:
    if isinstance(v, Nested):
        made = (_make(item, device, real, dtype, gen) for item in v.items)
        return dict(zip(v.keys, made)) if v.container is dict else v.container(made)
    if isinstance(v, Given):
        return _given(v, device, real, dtype)
    if isinstance(v, Shaped):
        dt = torch_dtype(v.dtype)
        if dtype is not None and dt.is_floating_point:
            dt = dtype
        if not real:
            return torch.empty(v.shape, dtype=dt, device="meta")
        if dt.is_floating_point and dt.itemsize < 2:  # fp8 and narrower: no randn kernel
            return torch.randn(v.shape, generator=gen).to(device=device, dtype=dt)
        if dt.is_floating_point or dt.is_complex:
            return torch.randn(v.shape, dtype=dt, generator=gen).to(device)
        return torch.zeros(v.shape, dtype=dt, device=device)
    return v
