"""The public entry point: ``analyze(model, inputs) -> Report``."""

from __future__ import annotations

import os
from typing import Any

from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.registry import CONVENTIONS
from modelmeter.report import Report
from modelmeter.units import canonical_dtype


def analyze(
    model: Any,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    mode: str = "auto",
    convention: str = "exact",
    dtype: str | None = None,
    batch: int | None = None,
    backward: bool = False,
    dims: dict[str, int] | None = None,
) -> Report:
    """Analyse ``model`` and return its Report.

    ``model``: an ``nn.Module``, any callable on tensors, or a name (``torchvision:resnet50``,
    ``hf:gpt2``, ``timm:NAME``, ``path/to/file.py:FACTORY``). ``inputs``: a tensor, a tuple of
    tensors, or shapes such as ``"1x3x224x224"`` / ``"1x128:int64"``; named models bring a
    default. ``mode``: ``auto`` (meta, falling back to real CPU tensors when the model needs
    data), ``meta`` or ``real``. ``convention``: ``exact`` or ``2mac``. ``dtype``: analyse as if
    weights and floating activations were this dtype (bytes change, counts do not).
    ``batch``: replace the first dimension of every shape-given input. ``backward``: also run
    and count the backward pass (phase ``backward``), as one training step would. ``dims``:
    values of symbolic input dimensions (ONNX models), e.g. ``{"batch": 8}``.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    if dtype is not None:
        try:
            dtype = canonical_dtype(dtype)
        except ValueError as e:
            raise InputError(str(e)) from None
    if _is_onnx(model):
        from modelmeter.frontends.onnx import trace as onnx_trace

        if backward:
            raise InputError("an ONNX graph has no backward pass to trace")
        return build(
            onnx_trace(
                model,
                inputs,
                kwargs=kwargs,
                dims=dims,
                convention=convention,
                dtype=dtype,
                batch=batch,
            )
        )
    if dims:
        raise InputError("--dim/dims only applies to ONNX models (named dimensions)")
    label = None
    if isinstance(model, str):
        from modelmeter.models import load

        loaded = load(model)
        label = loaded.label
        model = loaded.model
        if inputs is None and kwargs is None:
            inputs, kwargs = loaded.inputs, loaded.kwargs
    if batch is not None:
        inputs, kwargs = (
            _with_batch(inputs, batch),
            {k: _with_batch_one(v, batch) for k, v in (kwargs or {}).items()},
        )
    from modelmeter.frontends.torch import trace

    return build(
        trace(
            model,
            inputs,
            kwargs=kwargs,
            mode=mode,
            convention=convention,
            dtype=dtype,
            name=label,
            backward=backward,
        )
    )


def _is_onnx(model: Any) -> bool:
    """A path to an ``.onnx`` file, or an ``onnx.ModelProto``."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model).lower().endswith(".onnx")
    return type(model).__name__ == "ModelProto"


def _with_batch_one(v: Any, batch: int) -> Any:
    if isinstance(v, str):
        from modelmeter.shapes import parse_shape

        shape, dt = parse_shape(v)
        if not shape:
            return v
        text = "x".join(map(str, (batch, *shape[1:])))
        return f"{text}:{dt}" if dt else text
    return v


def _with_batch(inputs: Any, batch: int) -> Any:
    if isinstance(inputs, str):
        return _with_batch_one(inputs, batch)
    if isinstance(inputs, (list, tuple)) and all(isinstance(v, str) for v in inputs):
        return type(inputs)(_with_batch_one(v, batch) for v in inputs)
    return inputs
