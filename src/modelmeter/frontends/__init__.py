"""The frontends, chosen through one registry: :func:`frontend_for` is the only place that
decides whether a model is an ONNX graph or a PyTorch callable."""

from __future__ import annotations

import importlib
from typing import Any

from modelmeter.frontends.base import Frontend

# Tried in order; each module defines ``FRONTEND`` (a :class:`Frontend`). Imported on first
# use, so that ``import modelmeter`` loads neither torch nor onnx.
_MODULES: tuple[str, ...] = (
    "modelmeter.frontends.onnx.frontend",
    "modelmeter.frontends.torch.frontend",
)


def frontends() -> list[Frontend]:
    return [importlib.import_module(m).FRONTEND for m in _MODULES]


def frontend_for(model: Any) -> Frontend:
    """The first frontend that accepts ``model`` (the PyTorch frontend accepts every name
    and callable the others do not)."""
    for fe in frontends():
        if fe.accepts(model):
            return fe
    from modelmeter.errors import InputError

    raise InputError(f"cannot analyse a {type(model).__name__}: give a module, a name or a file")


__all__ = ["Frontend", "frontend_for", "frontends"]
