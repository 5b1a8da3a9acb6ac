"""The identity of a tensor's storage in a trace: a serial number the storage is given the
first time a trace sees it, kept on the storage's Python object and never given again.

Storage identity must not be an address. The C++ storage's address (``_cdata``; a meta
tensor's ``data_ptr`` is 0 for all of them) is handed to the next storage allocated once this
one is freed, and many allocations happen where a trace records no event (``empty`` and other
allocations without cost, a decomposition's scratch, a 0-d scalar). A tensor at a reused
address would then inherit what the replays of a trace learnt of the dead one (split or
whole under tensor parallelism, live until its last use, part of the KV cache), and which
address the allocator hands out differs from run to run: the per-device figures varied.

The serial stays with the storage as long as it lives: PyTorch keeps a storage's Python
object (and the attribute on it) alive while any tensor views the storage, and a new storage
at the same address gets a new object, so a new serial. Serials start at 1 (0 reads as "no
storage" to :func:`modelmeter.registry.unfused_bytes`); a tensor without a storage (sparse)
falls back to ``id(t)``."""

from __future__ import annotations

import itertools

import torch

_KEY = "_modelmeter_sid"
_SERIALS = itertools.count(1)  # next() is atomic under the GIL: threads tracing at once


def storage_id(t: torch.Tensor) -> int:
    """The serial of ``t``'s storage (the module docstring)."""
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. sparse)
        return id(t)
    attrs = storage.__dict__
    sid = attrs.get(_KEY)
    if sid is None:
        sid = attrs[_KEY] = next(_SERIALS)
    return sid


__all__ = ["storage_id"]
