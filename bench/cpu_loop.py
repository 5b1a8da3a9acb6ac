"""The CPU loop: calibrate this CPU, time a few torchvision models, fit what the calibration
cannot give on some of them and report the error on the others (not a test).

    python bench/cpu_loop.py [--out DIR] [--batches 1,8] [--repeats 5]

1. ``calibrate`` (quick) measures the CPU's matmul, vector and copy ceilings, its per-op
   overhead and its per-class efficiencies (conv, depthwise, pool, norm) into a spec.
2. Every model in FIT and HELD_OUT is built with random weights, analysed, and timed as
   ``measure`` times it (inference_mode, warm-ups, the median of the repeats), at each batch,
   float32, with freed memory kept (docs/measure.md, "CPU: page faults").
3. On the FIT models only, a coordinate descent (mean |log(pred/meas)|) searches the share
   of the machine the timed runs got (``load``: on a machine other processes load, the short
   calibration and the long timed runs get different shares) and the figures a square-matmul
   calibration cannot see: the matmul class's and the dense conv class's attainable fraction
   of the calibrated matmul rate (real layers are smaller and thinner than the calibration's
   square matmul) and the per-op overhead. The error reported is on HELD_OUT, before (the
   calibration alone) and after (calibration + fitted figures); the FLOPs-only estimate
   (FLOPs / calibrated matmul rate) beside them.
4. Writes cpu_loop.json (every measurement) and cpu_loop.md into ``--out``.

Slow on a loaded 2-core machine (minutes): the model set is small on purpose.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from gpu_check import keep_freed_memory  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.frontends.torch.building import load_on_device, prepare  # noqa: E402
from modelmeter.frontends.torch.timing import time_model  # noqa: E402
from modelmeter.hardware.calibrate import calibrate  # noqa: E402
from modelmeter.hardware.loader import spec_from_dict  # noqa: E402
from modelmeter.inputs import InputRequest  # noqa: E402

# vit_b_16 fits: without a transformer the matmul class's fraction is not identified
FIT = ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "vit_b_16"]
HELD_OUT = ["regnet_y_800mf", "efficientnet_b0", "densenet121", "convnext_tiny"]
# "load": the share of the machine the timed runs got against the calibration's short bursts
# (on a machine other processes load, every time is stretched alike: ceilings / load,
# overheads x load); then the matmul and conv classes' fractions and the per-op overhead.
GRID: dict[str, list[float]] = {
    "load": [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0],
    "matmul": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "conv": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "overhead_scale": [0.6, 0.8, 1.0, 1.2, 1.5, 2.0],
}


def measure_all(models: list[str], batches: list[int], warmup: int, repeats: int) -> list[dict]:
    cpu = torch.device("cpu")
    out = []
    for name in models:
        model = load_on_device(f"torchvision:{name}", cpu).model
        for batch in batches:
            request = InputRequest.from_api("1x3x224x224", batch=batch, dtype="float32")
            prepared = prepare(model, request, cpu)
            report = modelmeter.analyze(prepared.analysis_model, "1x3x224x224", batch=batch)
            t = time_model(prepared.model, prepared.args, prepared.kwargs, cpu,
                           warmup=warmup, repeats=repeats)
            median = statistics.median(t.samples)
            out.append({"model": name, "batch": batch, "measured_s": median,
                        "samples_s": list(t.samples), "report": report})
            print(f"{name:20} b{batch:<2} {median * 1e3:8.1f} ms", flush=True)
    return out


def analysed(stored: list[dict]) -> list[dict]:
    """Stored measurements with their analyses made again."""
    out = []
    for c in stored:
        request = InputRequest.from_api("1x3x224x224", batch=c["batch"], dtype="float32")
        model = load_on_device(f"torchvision:{c['model']}", torch.device("cpu")).model
        prepared = prepare(model, request, torch.device("cpu"))
        out.append({**c, "report": modelmeter.analyze(prepared.analysis_model, request)})
    return out


def with_params(spec: Any, p: dict[str, float]) -> Any:
    """The calibrated spec with the fitted matmul and conv fractions and overhead scale."""
    kernels = dict(spec.kernel_efficiency)
    memory = dict(spec.kernel_memory)
    kernels["matmul"] = p["matmul"]
    conv_memory = spec.kernel_factors("conv")[1]
    kernels["conv"] = p["conv"]
    memory["conv"] = conv_memory
    load = p.get("load", 1.0)
    return replace(spec, kernel_efficiency=kernels, kernel_memory=memory, dtype_kernels={},
                   kernel_overhead=spec.kernel_overhead * p["overhead_scale"] * load,
                   dtype_overhead={}, efficiency_compute=1 / load, efficiency_memory=1 / load)


def errors(cases: list[dict], spec: Any, models: list[str]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for c in cases:
        if c["model"] not in models:
            continue
        roof = roofline(c["report"], spec, phase="forward")
        flops_only = c["report"].total().cost.flops / roof.spec.compute["float32"]
        row = out.setdefault(c["batch"], {"ratios": [], "flops_only": [], "models": []})
        row["ratios"].append(roof.latency_s / c["measured_s"])
        row["flops_only"].append(flops_only / c["measured_s"])
        row["models"].append(c["model"])
    for row in out.values():
        row["median"] = statistics.median(abs(r - 1) for r in row["ratios"])
        row["median_flops_only"] = statistics.median(abs(r - 1) for r in row["flops_only"])
    return out


def fit(cases: list[dict], spec: Any, sweeps: int = 2) -> dict[str, float]:
    p = {"load": 1.0, "matmul": 1.0, "conv": spec.kernel_factors("conv")[0],
         "overhead_scale": 1.0}

    def score(q: dict[str, float]) -> float:  # mean |log(pred/meas)| over the fitting cases
        rows = errors(cases, with_params(spec, q), FIT).values()
        logs = [abs(math.log(r)) for row in rows for r in row["ratios"]]
        return sum(logs) / len(logs)

    return descend(score, p, GRID, sweeps)


def descend(score: Any, start: dict[str, float], grid: dict[str, list[float]],
            sweeps: int = 2) -> dict[str, float]:
    """Coordinate descent of ``score`` over ``grid`` from ``start`` (bench/ort_loop.py too)."""
    p, best = start, score(start)
    for _ in range(sweeps):
        for key, values in grid.items():
            for v in values:
                trial = {**p, key: v}
                s = score(trial)
                if s < best - 1e-9:
                    best, p = s, trial
    return p


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "cpu_loop_out")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", help="comma-separated: fit models, then ';', held-out ones")
    p.add_argument("--replay", help="a cpu_loop.json: fit its measurements again")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's); 1 is steadier on a loaded machine "
                   "(no OpenMP barriers spinning against other processes)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global FIT, HELD_OUT
    if args.models:
        fit_part, held_part = args.models.split(";")
        FIT, HELD_OUT = fit_part.split(","), held_part.split(",")
    allocator = keep_freed_memory()
    t0 = time.perf_counter()
    if args.replay:  # refit a stored run: its calibration and times, analyses made again
        stored = json.loads(Path(args.replay).read_text(encoding="utf-8"))
        spec = spec_from_dict(stored["calibrated_spec"])
    else:
        spec = calibrate("cpu", ["float32"], quick=True).to_spec("cpu-calibrated")
    print(f"calibrated in {time.perf_counter() - t0:.0f} s: matmul "
          f"{spec.compute['float32'] / 1e9:.0f} GFLOP/s, copy {spec.bandwidth / 1e9:.1f} GB/s, "
          f"{spec.kernel_overhead * 1e6:.1f} us per op, kernels {spec.kernels_table()}", flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    if args.replay:
        cases = analysed(stored["cases"])
        if not args.models:
            FIT[:], HELD_OUT[:] = stored["fit"], stored["held_out"]
    else:
        cases = measure_all(FIT + HELD_OUT, batches, args.warmup, args.repeats)
    params = fit(cases, spec)
    fitted = with_params(spec, params)
    before, after = errors(cases, spec, HELD_OUT), errors(cases, fitted, HELD_OUT)
    threads = stored.get("threads", "?") if args.replay else torch.get_num_threads()
    lines = [
        f"# CPU loop: {threads} threads, torch {torch.__version__}, "
        f"allocator: {allocator}, load average {os.getloadavg()[0]:.1f} at the end",
        "",
        f"calibration: matmul {spec.compute['float32'] / 1e9:.0f} GFLOP/s, copy "
        f"{spec.bandwidth / 1e9:.1f} GB/s, {spec.kernel_overhead * 1e6:.1f} us per op",
        f"fitted on {', '.join(FIT)}: {params}",
        f"held out: {', '.join(HELD_OUT)}",
        "",
        "| batch | held-out models | calibrated | calibrated + fitted | FLOPs-only |",
        "|---|---:|---:|---:|---:|",
    ]
    for b in sorted(after):
        lines.append(f"| {b} | {len(after[b]['ratios'])} | {100 * before[b]['median']:.0f}% | "
                     f"{100 * after[b]['median']:.0f}% | "
                     f"{100 * after[b]['median_flops_only']:.0f}% |")
    lines += ["", "| model | batch | measured | pred/meas calibrated | pred/meas fitted |",
              "|---|---:|---:|---:|---:|"]
    for c in cases:
        r0 = roofline(c["report"], spec, phase="forward").latency_s / c["measured_s"]
        r1 = roofline(c["report"], fitted, phase="forward").latency_s / c["measured_s"]
        tag = "" if c["model"] in HELD_OUT else " (fit)"
        lines.append(f"| {c['model']}{tag} | {c['batch']} | {c['measured_s'] * 1e3:.1f} ms | "
                     f"{r0:.2f} | {r1:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_loop.md").write_text(text, encoding="utf-8")
    doc = {"params": params, "calibrated_spec": spec.to_dict(), "fit": FIT, "held_out": HELD_OUT,
           "threads": threads,
           "cases": [{k: v for k, v in c.items() if k != "report"} for c in cases]}
    (out / "cpu_loop.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
