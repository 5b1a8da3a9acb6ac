"""How long a full generation analysis takes, as a multiple of one prefill analysis.

``generate(hf:llama-3-70b, prompt=4096, new=4096, hardware=h100-sxm)`` (prefill, the decode
steps traced to fit and check the curve, the cache fitted, the roofline at the sampled
contexts) against ``analyze`` of the same model on 4096 tokens (the prefill alone) and a
plain meta-device forward of the model on the same tokens under ``torch.no_grad()`` (the
least any shape-level tool spends). The model is built once on meta (timed apart); then the
three are timed in turn, ``--repeats`` rounds (median of each), in CPU seconds of this
process and wall seconds; peak RSS of the process at the end; the load average before and
after (other jobs on the machine inflate the wall times, not the CPU seconds).

    .venv/bin/python bench/generation_speed.py [--model hf:llama-3-70b] [--prompt 4096]
                                               [--new 4096] [--hardware h100-sxm] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, result) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hf:llama-3-70b")
    p.add_argument("--prompt", type=int, default=4096)
    p.add_argument("--new", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--hardware", default="h100-sxm")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    load_before = os.getloadavg()

    import torch

    from modelmeter.models import load
    from modelmeter.usecases.analyze import analyze
    from modelmeter.usecases.generate import generate

    build_s, build_cpu, model = timed(lambda: load(args.model).model)
    ids = torch.zeros((args.batch, args.prompt), dtype=torch.int64, device="meta")

    def plain() -> None:
        with torch.no_grad():
            model(input_ids=ids)

    def prefill() -> object:
        return analyze(model, kwargs={"input_ids": f"{args.batch}x{args.prompt}:int64"})

    def gen() -> Any:
        return generate(model, prompt=args.prompt, new=args.new, batch=args.batch,
                        hardware=args.hardware)  # fmt: skip

    rows: dict[str, list[tuple[float, float]]] = {"plain": [], "prefill": [], "generate": []}
    g = None
    for _ in range(args.repeats):
        for name, fn in (("plain", plain), ("prefill", prefill), ("generate", gen)):
            wall, cpu, out = timed(fn)
            rows[name].append((wall, cpu))
            g = out if name == "generate" else g
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in rows.items()}  # fmt: skip
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    assert g is not None
    print(f"model {args.model}: {g.prefill.total().params:,} parameters; prompt {args.prompt}, "
          f"new {args.new}, batch {args.batch}; median of {args.repeats}")  # fmt: skip
    print("                          wall s   CPU s")
    print(f"build on meta            {build_s:7.2f} {build_cpu:7.2f}")
    for name, label in (("plain", "plain meta forward"), ("prefill", "analyze (prefill)"),
                        ("generate", "generate")):  # fmt: skip
        print(f"{label:24s} {med[name][0]:7.2f} {med[name][1]:7.2f}")
    gen_cpu, pre_cpu, plain_cpu = med["generate"][1], med["prefill"][1], med["plain"][1]
    print(f"generate / one prefill analysis: {gen_cpu / pre_cpu:.2f} x (CPU s; wall "
          f"{med['generate'][0] / med['prefill'][0]:.2f} x); prefill analysis / plain "
          f"forward {pre_cpu / plain_cpu:.2f} x; generate / plain forward "
          f"{gen_cpu / plain_cpu:.2f} x")  # fmt: skip
    print(f"({len(g.curve.traced)} decode steps traced, roofline at "
          f"{len(g.timing.evaluated) if g.timing else 0} contexts; decode total "
          f"{g.timing.decode_total_s if g.timing else 0!r} s)")  # fmt: skip
    print(f"peak RSS                 {rss:7.0f} MiB")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
