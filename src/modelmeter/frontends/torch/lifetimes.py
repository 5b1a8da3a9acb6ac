"""Live activation bytes over a trace: each storage an op creates is followed (by a weak
reference to every tensor viewing it) until the last of them dies."""

from __future__ import annotations

import weakref

import torch


class Lifetimes:
    """Live activation bytes over time, by storage, from op outputs' lifetimes."""

    def __init__(self, excluded: set[int]) -> None:
        self.excluded = excluded  # parameter and buffer storages
        self.refs: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self._watch: dict[int, tuple[weakref.ref, int]] = {}
        self.live = 0
        self.peak = 0
        self.allocated = 0
        self.timeline: list[int] = []  # live bytes after each new storage (sweeps' exact peak)

    def track(self, t: torch.Tensor, sid: int, output: bool = True) -> None:
        """Follow ``t`` until it dies; ``output``: count a new storage as an activation."""
        if sid in self.excluded:
            return
        n = self.refs.get(sid)
        if n is None:
            nbytes = self.nbytes(t)
            self.size[sid] = nbytes
            self.live += nbytes
            self.timeline.append(self.live)
            if output:
                self.allocated += nbytes
            if self.live > self.peak:
                self.peak = self.live
            n = 0
        self.refs[sid] = n + 1
        ref = weakref.ref(t, self._died)
        self._watch[id(ref)] = (ref, sid)

    def nbytes(self, t: torch.Tensor) -> int:
        return t.untyped_storage().nbytes()

    def _died(self, ref: weakref.ref) -> None:
        entry = self._watch.pop(id(ref), None)
        if entry is not None:
            self._release(entry[1])

    def _release(self, sid: int) -> None:
        n = self.refs.get(sid, 0) - 1
        if n > 0:
            self.refs[sid] = n
            return
        self.refs.pop(sid, None)
        self.live -= self.size.pop(sid, 0)
