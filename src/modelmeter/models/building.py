"""Building modules fast and without side effects: on the meta device, or on the CPU with
parameter initialisation skipped (for builders that compute with tensors while building)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def skip_init() -> Iterator[None]:
    """Turn every ``torch.nn.init`` initialiser into a no-op while building; always restores.

    Parameters built inside hold uninitialised memory: move them to the meta device, or fill
    them (:func:`fill_finite`) before computing with them.
    """
    init = torch.nn.init
    saved: dict[str, Any] = {}
    for name in dir(init):
        fn = getattr(init, name)
        if name.endswith("_") and not name.startswith("_") and callable(fn):
            saved[name] = fn
    try:
        for name in saved:
            setattr(init, name, _identity)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def _identity(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


def build_meta(builder: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build on the meta device; builders that compute with tensors while building (and
    fail on meta) are built on the CPU with initialisation skipped, then moved to meta."""
    try:
        with torch.device("meta"):
            return builder()
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        pass
    with skip_init():
        model = builder()
    return model.to("meta")


def build_seeded(builder: Callable[[], torch.nn.Module], seed: int = 0) -> torch.nn.Module:
    """Build on the CPU with default initialisation under a fixed seed (real, finite values,
    the same each time), leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()
