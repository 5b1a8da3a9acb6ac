"""One attribute of PyTorch replaced while meta traces run, shared by the threads that trace.

The first trace to start installs the replacement, the last to end puts the original back;
the replacement diverts only calls made in a thread that is tracing (:attr:`SharedPatch.
tracing`) and hands every other call to :attr:`SharedPatch.saved`, the original. Used for
SDPA's fused kernel (fused.py) and nn.LSTM's oneDNN layers (fused_rnn.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class SharedPatch:
    """``owner.name`` replaced by ``replacement`` while any :meth:`installed` block runs."""

    def __init__(self, owner: Any, name: str, replacement: Callable[..., Any]) -> None:
        self._owner, self._name, self._replacement = owner, name, replacement
        self._lock = threading.Lock()
        self._active = 0  # traces running that use the replacement (threads may overlap)
        self._local = threading.local()  # .depth: traces running in this thread
        self.saved: Any = getattr(owner, name)  # what the replacement replaced

    @property
    def tracing(self) -> bool:
        """Whether the calling thread is inside an :meth:`installed` block."""
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        with self._lock:
            if self._active == 0:
                self.saved = getattr(self._owner, self._name)
                setattr(self._owner, self._name, self._replacement)
            self._active += 1
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    setattr(self._owner, self._name, self.saved)


__all__ = ["SharedPatch"]
