"""The sweep of a training step over 1, 2, 4, ... 1024 devices against one train analysis (not
a test).

Times ``train(MODEL, --seq S, devices=64, zero=Z, hardware=CHIP)`` (one traced step with its
plan) and ``train_devices`` of the same over the 11 device counts (the step traced once, the
sharding, communication and time re-applied at each count), interleaved, ``--repeats`` times
each (median). Prints both times and their ratio (target ~1.0x: the sweep adds no trace), the
number of steps each traced, and checks the sweep's point at 64 devices against the plain run.

    .venv/bin/python bench/train_devices.py [--model hf:gpt2] [--seq 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from unittest import mock

from modelmeter.analysis.device_sweep import DEVICE_COUNTS, point_of
from modelmeter.frontends.torch import training as tracer
from modelmeter.hardware import load_spec
from modelmeter.usecases.train import train, train_devices


def timed(f: Callable[[], object]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def traces(f: Callable[[], object]) -> int:
    """How many steps ``f`` traces."""
    with mock.patch.object(tracer, "trace_step", wraps=tracer.trace_step) as spy:
        f()
    return spy.call_count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hf:gpt2")
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--zero", type=int, default=3)
    p.add_argument("--hardware", default="h100-sxm")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    kw = {"precision": "bf16-mixed", "zero": args.zero, "hardware": load_spec(args.hardware)}
    inputs = f"1x{args.seq}:int64"

    def one() -> object:
        return train(args.model, inputs, devices=64, **kw)

    def sweep() -> object:
        return train_devices(args.model, inputs, **kw)

    one(), sweep()  # warm: imports, the model's code
    t1, ts = [], []
    for _ in range(args.repeats):
        t1.append(timed(one))
        ts.append(timed(sweep))
    a, b = statistics.median(t1), statistics.median(ts)
    s = sweep()
    assert point_of(one(), 64) == next(q for q in s.points if q.devices == 64)
    print(f"{args.model} seq {args.seq}, bf16-mixed AdamW, ZeRO-{args.zero}, {args.hardware}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"train (devices=64):           {a:.3f} s  ({traces(one)} step traced)")
    print(f"train_devices ({len(DEVICE_COUNTS)} counts):  {b:.3f} s  ({traces(sweep)} step "
          f"traced)  = {b / a:.2f}x one analysis")  # fmt: skip
    print("point at 64 devices equals the separate run: yes")


if __name__ == "__main__":
    main()
