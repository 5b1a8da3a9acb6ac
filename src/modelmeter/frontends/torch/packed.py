"""Packed parameters: the weights of quantised modules (``torch.ao.nn.quantized`` Linear and
Conv, static or dynamic) live in a ``torch.ScriptObject`` (``_packed_params``), not in the
parameter or buffer tables. They are counted as parameters all the same, at their real dtypes
(an int8 weight is 1 byte an element, a float32 bias 4), not trainable; ops that take the
packed object read them as weights."""

from __future__ import annotations

from typing import Any

import torch

from modelmeter.registry import TensorMeta

_NAMES = ("weight", "bias")


def is_packed(value: Any) -> bool:
    return isinstance(value, torch.ScriptObject) and value._has_method("unpack")


def key(obj: torch.ScriptObject) -> int:
    """The identity of the packed object behind a wrapper."""
    try:
        return abs(hash(obj))
    except TypeError:
        return id(obj)


def unpacked(obj: torch.ScriptObject) -> list[tuple[str, torch.Tensor, int]]:
    """(name, tensor, sid) of each tensor ``obj`` holds. The sids are negative, so that they
    never meet a storage's, and the same for every unpacking of ``obj`` and every Python
    wrapper of it (the dispatcher hands ops a new wrapper; its hash is the object's)."""
    try:
        items = obj.unpack()
    except (RuntimeError, NotImplementedError):
        return []
    out = []
    for i, (name, t) in enumerate(zip(_NAMES, items)):
        if isinstance(t, torch.Tensor):
            out.append((name, t, -(4 * key(obj) + i + 1)))
    return out


def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


STORED = {"qint8": "int8", "quint8": "uint8", "qint32": "int32", "quint4x2": "uint4"}


def stored_dtype(t: torch.Tensor) -> str:
    """The dtype a (quantised) tensor's elements are stored in: qint8 -> int8."""
    name = str(t.dtype).removeprefix("torch.")
    return STORED.get(name, name)


def packed_metas(obj: torch.ScriptObject, weights: set[int]) -> tuple[TensorMeta, ...]:
    """What an op taking ``obj`` reads: its tensors, as weights where they are the model's."""
    return tuple(
        TensorMeta(tuple(t.shape), stored_dtype(t), sid, sid in weights)
        for _, t, sid in unpacked(obj)
    )
