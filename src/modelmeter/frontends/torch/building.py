"""Building the model to run on the device: a named model built there with real random
weights, a user's module deep-copied and moved (its meta tensors materialised), and the
inputs made there (:func:`prepare`)."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from modelmeter.errors import InputError, ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.base import Prepared
from modelmeter.frontends.torch.exclusive import exclusive
from modelmeter.frontends.torch.inputs import InputSpecs, cast_dtype
from modelmeter.inputs import InputRequest


class _BuildOn(TorchFunctionMode):
    """While a named model is built: tensors meant for the meta device (``with
    torch.device("meta")``, ``device="meta"``, ``.to("meta")``) and tensors created without a
    device are created on ``device`` instead, so the model gets real, initialised weights and
    buffers computed while building (e.g. relative-position indices) keep their values."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device

    def _swap(self, value: Any) -> Any:
        if isinstance(value, (str, torch.device)):
            with contextlib.suppress(RuntimeError, ValueError):
                if torch.device(value).type == "meta":
                    return self.device
        return value

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch.utils._device import _device_constructors

        kwargs = dict(kwargs or {})
        if "device" in kwargs:
            kwargs["device"] = self._swap(kwargs["device"])
        if kwargs.get("device") is None and func in _device_constructors():
            kwargs["device"] = self.device
        if func is torch.Tensor.to:
            args = tuple(self._swap(a) for a in args)
        return func(*args, **kwargs)


def load_on_device(spec: str, dev: torch.device, seed: int = 0) -> Any:
    """Build a named model (``modelmeter.models.load``) with real random weights on ``dev``
    (on the CPU if building on ``dev`` fails; :func:`prepare` moves it)."""
    from modelmeter.models import load

    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            with _BuildOn(dev):
                return load(spec)
        except ModelmeterError:
            raise
        except Exception:  # noqa: BLE001 - a builder that needs the CPU (e.g. .numpy())
            if dev.type == "cpu":
                raise
        torch.manual_seed(seed)
        with _BuildOn(torch.device("cpu")):
            return load(spec)  # moved to the device by prepare()


def _on_meta(model: torch.nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _materialize(model: torch.nn.Module, dev: torch.device, notes: list[str]) -> None:
    """Move a module to ``dev`` with real values: meta tensors are allocated, parameters
    filled from N(0, 0.02) and buffers with zeros, then ``reset_parameters`` runs where a
    module has one; non-finite values (uninitialised memory) are replaced, so timings see
    ordinary numbers."""
    if not _on_meta(model):
        model.to(device=dev)
    else:
        model.to_empty(device=dev)
        with torch.no_grad():
            for t in model.parameters():
                if t.is_floating_point():
                    t.normal_(0.0, 0.02)
                else:
                    t.zero_()
            for t in model.buffers():
                t.zero_()
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                with contextlib.suppress(Exception):
                    reset()
        notes.append(
            "the model's weights were on the meta device: they were allocated and filled "
            "with random values; buffers computed at build time lost their values"
        )
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                t.normal_(0.0, 0.02)


def prepare(model: Any, request: InputRequest, dev: torch.device) -> Prepared:
    """Build or copy the model onto ``dev`` in the request's dtype and make its inputs there
    (a named model's default inputs where the request gives none)."""
    notes: list[str] = []
    label = None
    if isinstance(model, str):
        loaded = load_on_device(model, dev)
        label, own = loaded.label, loaded.model
        request = request.with_defaults(loaded.inputs, loaded.kwargs, loaded.dtypes)
        analysis_model = own
    elif isinstance(model, torch.nn.Module):
        analysis_model = model
        own = _copy(model)
        notes.append("measured a deep copy of the given module (the module itself is untouched)")
    elif callable(model):
        own = analysis_model = model
        notes.append("a plain callable: timed as given (no parameters to copy or move)")
    else:
        raise InputError(f"cannot measure a {type(model).__name__}: give a module or a name")
    cast = cast_dtype(request.dtype) if request.dtype else None
    if isinstance(own, torch.nn.Module):
        _place(own, dev, cast, notes)
    specs = InputSpecs.from_request(request)
    args, kw = specs.materialize(dev, True, cast)
    return Prepared(
        model=own,
        device=dev,
        request=request,
        analysis_model=analysis_model,
        args=args,
        kwargs=kw,
        label=label or _label(model),
        notes=notes,
    )


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    try:
        with exclusive(model):  # not while a trace in another thread has its tensors swapped
            return copy.deepcopy(model)
    except Exception as e:  # noqa: BLE001 - the user's module: one clear line
        raise ModelRunError(
            f"cannot copy the model to measure it: {type(e).__name__}: {e}"
        ) from None


def _place(
    own: torch.nn.Module, dev: torch.device, cast: torch.dtype | None, notes: list[str]
) -> None:
    try:
        _materialize(own, dev, notes)
        if cast is not None:
            own.to(dtype=cast)
    except RuntimeError as e:
        raise ModelRunError(f"cannot place the model on {dev}: {first_line(e)}") from None
    if own.training:
        notes.append("the model is in training mode (as given): train-mode layers ran")


def _label(model: Any) -> str:
    if isinstance(model, torch.nn.Module):
        return type(model).__name__
    return getattr(model, "__name__", None) or type(model).__name__


__all__ = ["load_on_device", "prepare"]
