"""The fusion what-if against torch.compile on this CPU (not a test).

    python bench/fusion_check.py [--hardware SPEC.toml] [--models resnet18,...] [--batch 1]

For each model: the roofline's prediction unfused in eager (the Report as counted, a host
time per op) and fused with every rule under the graphs runtime (analysis/fusion.py: what a
compiler would run, no per-op host time), against the measured eager time and the measured
``torch.compile`` (inductor) time; it prints both speed-ups. Without ``--hardware`` the CPU
is calibrated first (quick). Slow: compiling takes a minute or more per model here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from gpu_check import keep_freed_memory  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.fusion import fuse  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.frontends.torch.building import load_on_device, prepare  # noqa: E402
from modelmeter.frontends.torch.timing import time_model  # noqa: E402
from modelmeter.hardware import load_spec  # noqa: E402
from modelmeter.inputs import InputRequest  # noqa: E402


def median_time(model: object, args: tuple, warmup: int, repeats: int) -> float:
    t = time_model(model, args, {}, torch.device("cpu"), warmup=warmup, repeats=repeats)
    return statistics.median(t.samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hardware", help="a calibrated CPU spec (default: calibrate now, quick)")
    p.add_argument("--models", default="resnet18,mobilenet_v3_small")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch threads (1: steadier "
                   "on a loaded machine)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    if args.hardware:
        spec = load_spec(args.hardware)
    else:
        from modelmeter.hardware.calibrate import calibrate

        spec = calibrate("cpu", ["float32"], quick=True).to_spec("cpu-calibrated")
    cpu = torch.device("cpu")
    print("| model | batch | eager meas | compiled meas | meas speed-up | pred eager | "
          "pred fused+graphs | pred speed-up | kernels | fused kernels |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        model = load_on_device(f"torchvision:{name}", cpu).model
        request = InputRequest.from_api("1x3x224x224", batch=args.batch, dtype="float32")
        prepared = prepare(model, request, cpu)
        report = modelmeter.analyze(prepared.analysis_model, "1x3x224x224", batch=args.batch)
        eager = median_time(prepared.model, prepared.args, args.warmup, args.repeats)
        t0 = time.perf_counter()
        compiled = torch.compile(prepared.model)
        with torch.inference_mode():
            compiled(*prepared.args)
        took = time.perf_counter() - t0
        fast = median_time(compiled, prepared.args, args.warmup, args.repeats)
        before = roofline(report, spec, phase="forward")
        after = roofline(fuse(report), spec, phase="forward", runtime="graphs")
        print(f"| {name} | {args.batch} | {eager * 1e3:.1f} ms | {fast * 1e3:.1f} ms | "
              f"{eager / fast:.2f}x | {before.latency_s * 1e3:.1f} ms | "
              f"{after.latency_s * 1e3:.1f} ms | {before.latency_s / after.latency_s:.2f}x | "
              f"{before.total.kernels} | {after.total.kernels} |  (compiled in {took:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
