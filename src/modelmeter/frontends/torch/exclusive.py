"""One analysis at a time per module object, across threads.

``torch.func.functional_call`` swaps the module's parameters and buffers for the trace's
copies while the forward runs, and the attribute snapshot puts its plain attributes back
afterwards: both act on the user's module objects, so two threads tracing the same module
(or two models that share a submodule) at once would see each other's copies. Those
traces take the modules they run in turn: :func:`exclusive` marks every module of the model
as used by the calling thread, after waiting until no other thread uses any of them. The
marks are taken all at once (never one by one while holding others), and a thread may take
modules it already holds (an ``analyze`` called from inside a forward), so two traces only
wait on each other when they share a module, and the waiting one holds nothing. Traces of
distinct models never wait.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

_CONDITION = threading.Condition()
_OWNERS: dict[int, tuple[int, int]] = {}  # id(module) -> (owning thread, depth)


@contextmanager
def exclusive(model: Any) -> Iterator[None]:
    """Hold every module of ``model`` (nothing for a plain callable) for this thread."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    me = threading.get_ident()
    keys = list({id(m) for m in model.modules()})  # the model holds them: ids stay unique
    with _CONDITION:
        _CONDITION.wait_for(lambda: all(_OWNERS.get(k, (me, 0))[0] == me for k in keys))
        for k in keys:
            _OWNERS[k] = (me, _OWNERS.get(k, (me, 0))[1] + 1)
    try:
        yield
    finally:
        with _CONDITION:
            for k in keys:
                owner, depth = _OWNERS[k]
                if depth > 1:
                    _OWNERS[k] = (owner, depth - 1)
                else:
                    del _OWNERS[k]
            _CONDITION.notify_all()


_F = TypeVar("_F", bound=Callable[..., Any])


def holds_model(fn: _F) -> _F:
    """Run ``fn(model, ...)`` holding ``model``'s modules (see :func:`exclusive`)."""

    @functools.wraps(fn)
    def held(model: Any, *args: Any, **kwargs: Any) -> Any:
        with exclusive(model):
            return fn(model, *args, **kwargs)

    return held  # type: ignore[return-value]


__all__ = ["exclusive", "holds_model"]
