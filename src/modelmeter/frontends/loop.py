"""The timing loop every runner shares: warm-up calls, then timed calls with the memory
probe around them, progress reported after every call, and minor page faults counted over
the timed calls. Framework-free: a runner passes its own clock and probe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelmeter.frontends.base import Progress
from modelmeter.host import minor_faults


class Steps:
    """Counts a run's calls and reports ``progress(stage, done, total)`` after each."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress

    def tick(self, stage: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(stage, self.done, self.total)


@dataclass
class Timed:
    """Seconds per timed call, and minor page faults per timed call."""

    samples: list[float]
    page_faults: float


def timed_loop(
    call: Callable[[], Any],
    clock: Callable[[Callable[[], Any]], float],
    steps: Steps,
    *,
    warmup: int,
    repeats: int,
    start: Callable[[], None] | None = None,
    sample: Callable[[], None] | None = None,
) -> Timed:
    """``warmup`` untimed calls, then ``start()`` (the memory probe) and ``repeats`` calls
    each timed by ``clock(call)`` (seconds) and followed by ``sample()``."""
    for _ in range(warmup):
        call()
        steps.tick("warm-up")
    if start is not None:
        start()
    faults_before = minor_faults()
    samples: list[float] = []
    for _ in range(repeats):
        samples.append(clock(call))
        if sample is not None:
            sample()
        steps.tick("timing")
    return Timed(samples, (minor_faults() - faults_before) / repeats)


__all__ = ["Steps", "Timed", "timed_loop"]
