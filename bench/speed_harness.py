"""The timing harness bench/generation_speed.py and bench/train_speed.py share: one call
timed in wall and CPU seconds, rounds of named calls reduced to their medians, the table of
those medians, the peak RSS and the load average."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

HEADER = "                          wall s   CPU s"


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, result) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def median_rounds(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, tuple[float, float]], dict[str, Any]]:
    """Each call timed in turn, ``repeats`` rounds: the (wall s, CPU s) median of each name and
    the last result of each."""
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu, last[name] = timed(fn)
            rows[name].append((wall, cpu))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in rows.items()}  # fmt: skip
    return med, last


def peak_rss_mib() -> float:
    """Peak resident set of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB


def print_table(build: tuple[float, float], med: dict[str, tuple[float, float]],
                labels: dict[str, str]) -> None:  # fmt: skip
    """The header, the meta build's (wall s, CPU s) and one median row per labelled name."""
    print(HEADER)
    print(f"build on meta            {build[0]:7.2f} {build[1]:7.2f}")
    for name, label in labels.items():
        print(f"{label:24s} {med[name][0]:7.2f} {med[name][1]:7.2f}")


def print_footer(rss_mib: float, load_before: tuple[float, float, float]) -> None:
    """The peak RSS and the 1-minute load average before the run and now."""
    print(f"peak RSS                 {rss_mib:7.0f} MiB")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
