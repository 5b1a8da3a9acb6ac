"""A sweep's cost against one analysis (not a test).

Times ``modelmeter.analyze`` of the Llama-2-7B shape (hf:llama-2-7b, built on meta; four in a
row at 128, 1024, 4096 and 8192 tokens, per analysis), then ``modelmeter.sweep`` of the same model over 64 sequence
lengths (128, 256, ..., 8192). The sweep loads the model once, traces it at the few lengths
its exact formula needs (and checks it at one it was not fitted on and at the largest), then
evaluates the formula at the other lengths. Each is timed ``--repeats`` times, interleaved (median); it
prints both times, the ratio (target: <= 4)
and the number of traces, and checks two rows taken from the formula against direct traces.

    .venv/bin/python bench/sweep_speed.py [--repeats 3] [--model hf:llama-2-7b]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import modelmeter
from modelmeter.analysis.report_formula import COUNTS, totals


def analyze(model: str, seq: int) -> modelmeter.Report:
    return modelmeter.analyze(model, kwargs={"input_ids": f"1x{seq}:int64"})


def timed(f: Callable[[], object]) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--model", default="hf:llama-2-7b")
    args = p.parse_args()
    lengths = [128 * k for k in range(1, 65)]  # 128 .. 8192, 64 lengths
    modelmeter.analyze(args.model, kwargs={"input_ids": "1x128:int64"})  # warm-up: imports
    ones, sweeps = [], []
    results: list[modelmeter.SweepResult] = []
    four = (128, 1024, 4096, 8192)
    for _ in range(args.repeats):  # interleaved: both see the same load of the machine
        # four analyses in a row (each builds the model and traces it), per analysis: the
        # garbage collector's pauses fall on them as they fall on the sweep's traces
        ones.append(timed(lambda: [analyze(args.model, s) for s in four]) / len(four))
        sweeps.append(timed(lambda: results.append(modelmeter.sweep(args.model, seq=lengths))))
    result = results[-1]
    one, swept = statistics.median(ones), statistics.median(sweeps)
    print(f"one analysis (4 in a row, per analysis; median of {args.repeats}): {one:.2f} s")
    print(f"sweep of {len(lengths)} sequence lengths (median of {args.repeats}): {swept:.2f} s, "
          f"{result.traces} traces")
    print(f"ratio sweep / analysis: {swept / one:.2f} (target <= 4)")
    formula_rows = [r for r in result.rows if r.source == "formula"]
    for row in (formula_rows[0], formula_rows[-1]):
        direct = analyze(args.model, row.point["seq"])
        same = row.totals == dict(zip(COUNTS, totals(direct)))
        print(f"seq={row.point['seq']}: formula row equals a direct trace: {same}")
    assert result.formula is not None
    print("\n".join(result.formula.lines()))


if __name__ == "__main__":
    main()
