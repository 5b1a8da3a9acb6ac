"""The largest micro-batch whose training step fits a chip's memory (``train(...,
max_batch=True)``): a search over traced steps, each counted for a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import ceil, log2
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.analysis.training import TrainingResult

MAX_BATCH = 1 << 20  # the search for the largest batch stops there


class _Search:
    """The steps traced so far, by micro-batch; ``progress(stage, done, total)`` is told
    before each trace: n of the N traces the search knows it needs so far (None while it
    doubles, not knowing how far)."""

    def __init__(self, step: Callable[[int], TrainingResult], progress: Any) -> None:
        self.step, self.progress = step, progress
        self.seen: dict[int, TrainingResult] = {}
        self.needed: int | None = 2  # batch 1 and 2

    def at(self, b: int) -> TrainingResult:
        if b not in self.seen:
            if self.progress:
                n = len(self.seen)
                total = None if self.needed is None else max(self.needed, n + 1)
                self.progress(f"tracing micro-batch {b}", n, total)
            self.seen[b] = self.step(b)
        return self.seen[b]

    def bisecting(self, lo: int, hi: int) -> None:
        """A bisection between ``lo`` (fits) and ``hi`` (does not) traces at most
        ceil(log2(hi - lo)) more."""
        self.needed = len(self.seen) + (ceil(log2(hi - lo)) if hi - lo > 1 else 0)


def largest_batch(step: Callable[[int], TrainingResult], capacity: float,
                  progress: Any = None) -> TrainingResult:  # fmt: skip
    """The result of ``step(b)`` at the largest micro-batch b whose ``peak_bytes`` fit
    ``capacity`` (``max_batch`` set; 0 with the result at batch 1 when not even that fits).
    The peak is traced at batch 1 and 2, extrapolated linearly, and the guess traced with its
    neighbour; where the peak is not linear in the batch, a bisection between known points
    settles it."""
    s = _Search(step, progress)

    def fits(b: int) -> bool:
        return s.at(b).peak_bytes <= capacity

    if not fits(1):
        return replace(s.at(1), max_batch=0)
    lo, hi = 1, None  # lo fits; hi (when known) does not
    slope = s.at(2).peak_bytes - s.at(1).peak_bytes if fits(2) else 0
    if not fits(2):
        hi = 2
    elif slope > 0:
        lo = 2
        guess = min(max(2, 1 + int((capacity - s.at(1).peak_bytes) // slope)), MAX_BATCH)
        s.needed = len(s.seen) + (guess not in s.seen) + 1  # the guess and its neighbour
        lo, hi = (guess, None) if fits(guess) else (lo, guess)
        if hi is None and (guess >= MAX_BATCH or not fits(guess + 1)):
            hi = guess + 1
    s.needed = None
    while hi is None:  # grow until one does not fit
        lo, hi = (lo * 2, None) if fits(lo * 2) else (lo, lo * 2)
        if lo >= MAX_BATCH:
            hi = lo + 1
    s.bisecting(lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    best = s.at(lo)
    if lo >= MAX_BATCH:
        best = replace(best, notes=[*best.notes, f"the search for the largest batch stops at "
                                    f"{MAX_BATCH:,}: a larger one may fit too"])  # fmt: skip
    return replace(best, max_batch=lo)


__all__ = ["MAX_BATCH", "largest_batch"]
