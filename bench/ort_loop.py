"""The onnxruntime loop: calibrate this CPU, export a few torchvision models to ONNX, time
them with onnxruntime, predict them with ``--runtime ort`` unfused and fused, fit on some what
the calibration cannot give and report the error on the others (not a test).

    python bench/ort_loop.py [--out DIR] [--batches 1,8] [--repeats 5] [--models FIT;HELD]
                             [--calibration ort|torch]
    python bench/ort_loop.py --replay DIR/ort-loop.json [--models FIT;HELD]   # refit a run
    python bench/ort_loop.py --replay A.json --spec B.json --stem NAME  # A's times, B's spec

1. ``calibrate`` (quick) measures the CPU: by default ``--runtime ort`` (onnxruntime's own
   kernels, 1 intra-op thread: hardware/calibrate_ort_kernels.py), with ``--calibration
   torch`` the PyTorch calibration (torch on 1 thread); both measure onnxruntime's cost per
   node (``[overhead.runtimes] ort``: hardware/calibrate_ort.py).
2. Every model in FIT and HELD_OUT is built with random weights and exported at each batch
   (float32, ``torch.onnx.export(dynamo=True)`` with its defaults, as a user exports: the
   exporter's optimiser folds batch norms into the convolutions) into a temporary folder,
   analysed with the ONNX frontend, and timed as ``measure`` times an ONNX file (warm-ups,
   the median of the repeats) with one intra-op thread. onnxruntime's optimised graph (its
   default level, ORT_ENABLE_ALL) is saved once per file to count the nodes it runs.
3. Predicted with ``--runtime ort`` on the calibrated spec: unfused (the Report's op
   records, one node each) and with the analysis' fusion rules that match what onnxruntime
   does on the CPU (VARIANTS).
4. On the FIT models only, a coordinate descent (mean |log(pred/meas)|) searches what the
   calibration cannot give: a factor on the compute ceilings (matmul and vector) and one on
   the bandwidth (the kernels calibrate times against onnxruntime's in a model, cache-resident
   tensors against a DRAM copy, and the share of the machine the timed runs got:
   bench/cpu_loop.py's ``load``, here free to go either way), the depthwise convolution and
   pooling fractions and a scale on the per-node cost (a node on a real tensor may cost more than one
   of 16 elements). The dense conv class keeps its calibrated fractions: a factor on them
   and one on the compute ceiling could not be told apart.
   The error reported is on HELD_OUT, before and after, per variant.
5. Writes ort-loop.json (every measurement) and ort-loop.md into ``--out`` (``--stem``
   names them; ort-loop-torch with ``--calibration torch``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from cpu_loop import descend  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.fusion import fuse  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.frontends.onnx.timing import time_onnx  # noqa: E402
from modelmeter.hardware.calibrate import calibrate  # noqa: E402
from modelmeter.hardware.loader import spec_from_dict  # noqa: E402

FIT = ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0"]
HELD_OUT = ["regnet_y_800mf", "mobilenet_v2", "densenet121", "convnext_tiny"]
# onnxruntime 1.32 on the CPU at ORT_ENABLE_ALL (its optimised graphs of these models, counted
# in the JSON): every Conv becomes an NCHWc Conv holding the activation after it (Relu, Clip,
# HardSwish, HardSigmoid) and, in a residual block, the shortcut's Add (its "Sum" input); the
# exporter already folded the batch norms after convolutions, and one it could not (densenet's,
# after a Concat) becomes an NCHWc 1x1 depthwise Conv holding its ReLU. Other elementwise ops
# stay nodes of their own (SiLU's Sigmoid and Mul become one QuickGelu node, GELU one Gelu node,
# a squeeze-excitation's Mul stays), and ReorderInput/ReorderOutput nodes (layout copies the
# analysis does not count) are added around what NCHWc cannot run. So conv-bn-act is what it
# applies; elementwise only in part (the residual Add), and over-fuses elsewhere.
VARIANTS: dict[str, tuple[str, ...]] = {
    "unfused": (),
    "conv-bn-act": ("conv-bn-act",),
    "conv-bn-act,elementwise": ("conv-bn-act", "elementwise"),
}
# searched in this order, the classes first (ceilings first, the descent stopped at the grid's
# edges on both ceilings: held out 34% / 42% instead of 12% / 19% on one stored run)
GRID: dict[str, list[float]] = {
    "pool": [0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
    "depthwise": [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
    "compute": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0],
    "memory": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0],
    "node_scale": [0.5, 1, 2, 5, 10, 20, 50, 100, 200],
}


def export(name: str, batch: int, folder: Path) -> Path:
    """torchvision ``name`` (random weights) exported at ``batch``, float32, quietly."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    path = folder / f"{name}-b{batch}.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(batch, 3, 224, 224),), str(path), dynamo=True,
                          external_data=False)
    return path


def ort_nodes(path: Path) -> dict[str, int]:
    """The nodes of onnxruntime's optimised graph of ``path`` (its default level), by op
    type (the NCHWc domain's marked ``nchwc.``), and how many NCHWc convolutions hold an
    activation or a residual sum."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    optimised = path.with_suffix(".opt.onnx")
    options.optimized_model_filepath = str(optimised)
    ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(optimised)).graph
    optimised.unlink()
    counts: Counter[str] = Counter()
    for node in graph.node:
        counts[("nchwc." if node.domain.endswith("nchwc") else "") + node.op_type] += 1
        if node.op_type in ("Conv", "FusedConv"):
            attrs = {a.name for a in node.attribute}
            counts["conv with activation"] += "activation" in attrs
            counts["conv with sum"] += len(node.input) > 3  # X, W, B, Sum
    return dict(counts)


def measure_all(models: list[str], batches: list[int], warmup: int, repeats: int,
                folder: Path) -> list[dict]:
    out = []
    for name in models:
        for batch in batches:
            path = export(name, batch, folder)
            report = modelmeter.analyze(str(path))
            t = time_onnx(str(path), list(report.inputs), "cpu", warmup=warmup,
                          repeats=repeats, threads=1)
            nodes = ort_nodes(path)
            path.unlink()
            median = statistics.median(t.samples)
            ops = sum(len(n.ops) for n in report.modules())
            out.append({"model": name, "batch": batch, "measured_s": median,
                        "samples_s": list(t.samples), "op_records": ops, "ort_nodes": nodes,
                        "reports": {v: fuse(report, r) if r else report
                                    for v, r in VARIANTS.items()}})
            real = sum(v for k, v in nodes.items() if not k.startswith("conv with"))
            print(f"{name:20} b{batch:<2} {median * 1e3:8.1f} ms, {ops} op records, "
                  f"{real} onnxruntime nodes", flush=True)
    return out


def analysed(stored: list[dict], folder: Path) -> list[dict]:
    """Stored measurements with their exports and analyses made again (``--replay``)."""
    out = []
    for c in stored:
        path = export(c["model"], c["batch"], folder)
        report = modelmeter.analyze(str(path))
        path.unlink()
        out.append({**c, "reports": {v: fuse(report, r) if r else report
                                     for v, r in VARIANTS.items()}})
    return out


def with_params(spec: Any, p: dict[str, float]) -> Any:
    """The calibrated spec with the fitted ceilings' scales, class fractions and per-node
    scale (the scales on the ceilings themselves: an efficiency is at most 1)."""
    kernels = dict(spec.kernel_efficiency)
    kernels["depthwise"] = p["depthwise"]
    kernels["pool"] = p["pool"]
    runtimes = {**spec.runtime_overhead, "ort": spec.runtime_overhead["ort"] * p["node_scale"]}
    fast = p["compute"]
    return replace(spec, kernel_efficiency=kernels, dtype_kernels={},
                   runtime_overhead=runtimes, bandwidth=spec.bandwidth * p["memory"],
                   compute={k: v * fast for k, v in spec.compute.items()},
                   vector={k: v * fast for k, v in spec.vector.items()})


def ratio(case: dict, spec: Any, variant: str) -> float:
    roof = roofline(case["reports"][variant], spec, phase="forward", runtime="ort")
    return roof.latency_s / case["measured_s"]


def errors(cases: list[dict], spec: Any, models: list[str], variant: str
           ) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for c in cases:
        if c["model"] in models:
            row = out.setdefault(c["batch"], {"ratios": [], "models": []})
            row["ratios"].append(ratio(c, spec, variant))
            row["models"].append(c["model"])
    for row in out.values():
        row["median"] = statistics.median(abs(r - 1) for r in row["ratios"])
    return out


def fit(cases: list[dict], spec: Any, variant: str) -> dict[str, float]:
    start = {"compute": 1.0, "memory": 1.0,
             "depthwise": spec.kernel_factors("depthwise")[0],
             "pool": spec.kernel_factors("pool")[0], "node_scale": 1.0}

    def score(q: dict[str, float]) -> float:  # mean |log(pred/meas)| over the fitting cases
        fitted = with_params(spec, q)
        logs = [abs(math.log(ratio(c, fitted, variant))) for c in cases if c["model"] in FIT]
        return sum(logs) / len(logs)

    return descend(score, start, GRID, sweeps=4)


def summary(cases: list[dict], spec: Any, fits: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| variant | batch | held-out models | calibrated | calibrated + fitted | fitted |",
             "|---|---:|---:|---:|---:|---|"]
    for variant, params in fits.items():
        before = errors(cases, spec, HELD_OUT, variant)
        after = errors(cases, with_params(spec, params), HELD_OUT, variant)
        shown = ", ".join(f"{k} {v:g}" for k, v in params.items())
        for b in sorted(after):
            lines.append(f"| {variant} | {b} | {len(after[b]['ratios'])} | "
                         f"{100 * before[b]['median']:.0f}% | {100 * after[b]['median']:.0f}% "
                         f"| {shown} |")
    return lines


def per_case(cases: list[dict], spec: Any, fits: dict[str, dict[str, float]]) -> list[str]:
    names = list(fits)
    lines = ["| model | batch | measured | kernels " + " / ".join(names)
             + " | onnxruntime nodes | " + " | ".join(f"{v} cal / fit" for v in names) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(names)]
    for c in cases:
        tag = "" if c["model"] in HELD_OUT else " (fit)"
        real = sum(v for k, v in c["ort_nodes"].items() if not k.startswith("conv with"))
        kernels = " / ".join(str(sum(len(n.ops) for n in c["reports"][v].modules()))
                             for v in names)
        cells = [f"{ratio(c, spec, v):.2f} / {ratio(c, with_params(spec, fits[v]), v):.2f}"
                 for v in names]
        lines.append(f"| {c['model']}{tag} | {c['batch']} | {c['measured_s'] * 1e3:.1f} ms | "
                     f"{kernels} | {real} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "ort_loop_out")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", help="comma-separated: fit models, then ';', held-out ones")
    p.add_argument("--replay", help="an ort-loop.json: fit its measurements again")
    p.add_argument("--calibration", choices=("ort", "torch"), default="ort",
                   help="whose kernels calibrate times: ort (calibrate --runtime ort, the "
                   "default) or torch (the PyTorch calibration)")
    p.add_argument("--spec", help="price with this ort-loop.json's calibrated spec instead "
                   "(with --replay: two calibrations on the same measured times)")
    p.add_argument("--stem", help="output file names (default ort-loop, or ort-loop-torch "
                   "with --calibration torch)")
    args = p.parse_args()
    torch.set_num_threads(1)  # the calibration's PyTorch kernels on one thread, as ORT runs
    global FIT, HELD_OUT
    if args.models:
        fit_part, held_part = args.models.split(";")
        FIT, HELD_OUT = fit_part.split(","), held_part.split(",")
    t0 = time.perf_counter()
    stored = json.loads(Path(args.replay).read_text(encoding="utf-8")) if args.replay else None
    if stored:  # its calibration and times, the analyses made again
        spec = spec_from_dict(stored["calibrated_spec"])
        if not args.models:
            FIT, HELD_OUT = stored["fit"], stored["held_out"]
    if args.spec:
        spec = spec_from_dict(json.loads(Path(args.spec).read_text(encoding="utf-8"))
                              ["calibrated_spec"])
    elif not stored:
        spec = calibrate("cpu", ["float32"], quick=True,
                         runtime=args.calibration).to_spec("cpu-calibrated")
    if "ort" not in spec.runtime_overhead:
        print("onnxruntime is not importable: nothing to check", file=sys.stderr)
        return 2
    head = (f"calibration: matmul {spec.compute['float32'] / 1e9:.0f} GFLOP/s, copy "
            f"{spec.bandwidth / 1e9:.1f} GB/s, {spec.kernel_overhead * 1e6:.1f} us per op "
            f"(eager), {spec.runtime_overhead['ort'] * 1e6:.3f} us per node (onnxruntime), "
            f"kernels {spec.kernels_table()}")
    print(f"calibrated in {time.perf_counter() - t0:.0f} s: {head}", flush=True)
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="ort_loop") as folder:
        kept = [c for c in stored["cases"] if c["model"] in FIT + HELD_OUT] if stored else []
        cases = (analysed(kept, Path(folder)) if stored else
                 measure_all(FIT + HELD_OUT, batches, args.warmup, args.repeats, Path(folder)))
    fits = {v: fit(cases, spec, v) for v in VARIANTS}
    import onnxruntime

    lines = [f"# onnxruntime loop: onnxruntime {onnxruntime.__version__}, 1 intra-op thread, "
             f"calibrated with {args.spec or ('stored spec' if stored else args.calibration)}, "
             f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at the end",
             "", head, f"fitted on {', '.join(FIT)}; held out: {', '.join(HELD_OUT)}", "",
             *summary(cases, spec, fits), "", *per_case(cases, spec, fits)]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.stem or ("ort-loop-torch" if args.calibration == "torch" else "ort-loop")
    (out / f"{stem}.md").write_text(text, encoding="utf-8")
    doc = {"fits": fits, "calibrated_spec": spec.to_dict(), "fit": FIT, "held_out": HELD_OUT,
           "onnxruntime": onnxruntime.__version__,
           "cases": [{**{k: v for k, v in c.items() if k != "reports"},
                      "pred_over_meas": {v: {"calibrated": ratio(c, spec, v),
                                             "fitted": ratio(c, with_params(spec, fits[v]), v)}
                                         for v in VARIANTS}} for c in cases]}
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
