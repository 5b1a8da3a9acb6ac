"""The timing harness bench/generation_speed.py and bench/train_speed.py share: the model
built on meta (timed) with a plain forward of it, one call timed in wall and CPU seconds,
rounds of named calls reduced to their medians, the table of those medians and their ratios,
the peak RSS and the load average."""

from __future__ import annotations

import argparse
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


def parse_args(doc: str, argv: list[str] | None, **ints: int) -> argparse.Namespace:
    """The command line: ``--model`` (Llama-3-70B's shape by default), the script's whole-number
    options ``ints`` (name: default) in order, ``--hardware`` and ``--repeats``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", default="hf:llama-3-70b")
    for name, default in ints.items():
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--hardware", default="h100-sxm")
    p.add_argument("--repeats", type=int, default=1)
    return p.parse_args(argv)


def meta_build(name: str, batch: int, tokens: int) -> tuple[tuple[float, float], Any, Callable[[], None]]:
    """The model ``name`` built on meta by modelmeter's loader, timed (wall s, CPU s), and a
    plain meta-device forward of it on ``batch`` x ``tokens`` ids under ``torch.no_grad()``
    (the least any shape-level tool spends)."""
    import torch

    from modelmeter.models import load

    build_s, build_cpu, model = timed(lambda: load(name).model)
    ids = torch.zeros((batch, tokens), dtype=torch.int64, device="meta")

    def plain() -> None:
        with torch.no_grad():
            model(input_ids=ids)

    return (build_s, build_cpu), model, plain


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


def print_ratios(med: dict[str, tuple[float, float]], whole: str, one: str) -> None:
    """How many times the ``whole`` analysis costs the ``one`` analysis it repeats (CPU s,
    and wall s), and each of the two against the plain forward (CPU s)."""
    big, small, plain = med[whole][1], med[one][1], med["plain"][1]
    print(f"{whole} / one {one} analysis: {big / small:.2f} x (CPU s; wall "
          f"{med[whole][0] / med[one][0]:.2f} x); {one} analysis / plain forward "
          f"{small / plain:.2f} x; {whole} / plain forward {big / plain:.2f} x")  # fmt: skip


def print_footer(rss_mib: float, load_before: tuple[float, float, float]) -> None:
    """The peak RSS and the 1-minute load average before the run and now."""
    print(f"peak RSS                 {rss_mib:7.0f} MiB")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
