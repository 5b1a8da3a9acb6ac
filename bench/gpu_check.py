"""Prediction vs measurement on a real device, in one run (not a test).

On a GPU (the target: one H100, about 8 minutes):
  1. calibrates the device (``modelmeter.hardware.calibrate.calibrate``: attainable matmul
     and vector FLOP/s, copy bandwidth, per-op overhead) into a spec;
  2. for each of >= 20 torchvision models, and a transformer decoder (hf:gpt2) at a few
     sequence lengths (``--decoder-seqs``), at batch 1 and 64, in float32 (TF32 off) and
     bfloat16: builds the model on the device with random weights, analyses it, times it
     (inference_mode, cudnn.benchmark, a few warm-ups and repeats, CUDA events), and
     predicts its latency with the roofline on the calibrated spec (launches overlapping
     execution, as a GPU queues them), on the same spec with launches paid in series
     ("serial"), on the same spec with the general figures for every dtype
     ("dtype-blind": no per-dtype overheads and kernel fractions), on the built-in spec as
     shipped ("built-in": its attainable figures) and on its datasheet figures alone
     ("datasheet": --ideal), beside the FLOPs-only estimate (FLOPs / datasheet matrix peak);
  3. counts, for a few models at batch 1, the device kernels one forward launches (torch
     profiler) against the op records modelmeter charges overhead for;
  4. prints a short table and writes gpu_check.json and gpu_check.md into ``--out``
     (default: $OUT if set, else ./gpu_check_out). The JSON is rewritten after every model,
     so a run cut short still leaves its results.

The error figure is the median over models of |predicted / measured - 1| per batch and dtype.
Goal: <= 25% at batch 64 on the calibrated spec.

On the CPU it runs tiny, to test the script itself:

    python bench/gpu_check.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

# Run from a checkout without installing: the package is in ../src.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import modelmeter  # noqa: E402
from modelmeter.analysis.classes import join_classes  # noqa: E402
from modelmeter.analysis.measure import MeasureResult, summarize  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.analysis.timings import median_error, quantile  # noqa: E402
from modelmeter.errors import first_line  # noqa: E402
from modelmeter.frontends.torch.building import load_on_device, prepare  # noqa: E402
from modelmeter.frontends.torch.device import backend_flags, resolve_device  # noqa: E402
from modelmeter.frontends.torch.profiling import profile_classes  # noqa: E402
from modelmeter.frontends.torch.timing import time_model  # noqa: E402
from modelmeter.hardware import builtin_names, load_spec  # noqa: E402
from modelmeter.hardware.calibrate import calibrate  # noqa: E402
from modelmeter.inputs import InputRequest  # noqa: E402
from modelmeter.units import canonical_dtype, format_rate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graphs_check import graphs_table, run_graphs_check  # noqa: E402

MODELS = [
    "alexnet",
    "vgg16",
    "resnet18",
    "resnet50",
    "resnet101",
    "wide_resnet50_2",
    "resnext50_32x4d",
    "densenet121",
    "squeezenet1_1",
    "shufflenet_v2_x1_0",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mnasnet1_0",
    "efficientnet_b0",
    "regnet_y_1_6gf",
    "regnet_x_3_2gf",
    "googlenet",
    "inception_v3",
    "convnext_tiny",
    "swin_t",
    "vit_b_16",
    "vit_b_32",
    "maxvit_t",
]
QUICK_MODELS = ["resnet18", "mobilenet_v3_small"]
DECODER = "gpt2"  # the decoder cases (--decoder-seqs): the hf:gpt2 preset, random weights
# the first four as the recorded runs profiled them; then fitting models (bench/h100_fit.py)
# whose profiles would let the launch time per kernel class come from fitting models alone
# (kept while the budget lasts: each is skipped, and recorded so, past --total)
KERNEL_CHECK = ["resnet50", "mobilenet_v3_large", "vit_b_16", "swin_t",
                "resnet18", "mobilenet_v2", "convnext_tiny"]


def guess_datasheet(device_name: str, names: list[str]) -> str | None:
    """The built-in spec a device name most likely is (None if none fits)."""
    text = device_name.lower().replace("geforce", "").replace("nvidia", "")
    tokens = set(text.replace("-", " ").split())
    if "h100" in tokens:
        return "h100-pcie" if "pcie" in tokens else "h100-sxm"
    if "a100" in tokens:
        if "pcie" in tokens:
            return "a100-pcie-80gb"
        return "a100-sxm-40gb" if any("40gb" in t for t in tokens) else "a100-sxm-80gb"
    if "v100" in tokens:
        return "v100-pcie" if "pcie" in tokens else "v100-sxm2"
    for name in sorted(names, key=len, reverse=True):
        parts = name.split("-")
        if all(p in tokens or p in text.replace(" ", "") for p in parts):
            return name
    return None


def calibrated_variants(cal: Any) -> dict[str, Any]:
    """The calibrated spec and the variants compared with it: the general figures for every
    dtype ("dtype-blind": do the per-dtype ones help) and launches paid in series ("serial":
    which launch model fits)."""
    specs = {"calibrated": cal}
    if cal.dtype_overhead or cal.dtype_kernels:
        specs["dtype-blind"] = dataclasses.replace(cal, dtype_overhead={}, dtype_kernels={})
    if cal.launches_overlap:
        specs["serial"] = dataclasses.replace(cal, overlap=False)
    return specs


def keep_freed_memory() -> str:
    """CPU: make glibc keep freed memory instead of returning it to the OS, as
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do. With the defaults, eager PyTorch's
    large activations are unmapped when freed and the next op faults fresh pages in (2.4x the
    latency of mobilenet_v2 at batch 8 on the 2-core machine this was written on); no roofline
    models that. Returns what was done, for the record."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold, big = -1, -3, 2**31 - 1
        ok = libc.mallopt(m_trim_threshold, big) and libc.mallopt(m_mmap_threshold, big)
    except (OSError, AttributeError):
        ok = False
    return "glibc mallopt: freed memory kept (trim and mmap thresholds 2 GiB)" if ok else "default"


def count_kernels(model: Any, args: tuple, kwargs: dict, dev: torch.device) -> float:
    """Device kernels per forward (CUDA: kernel events incl. memcpy/memset); on the CPU the
    top-level ATen calls per forward, the nearest analogue."""
    from torch.profiler import ProfilerActivity, profile

    cuda = dev.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    runs = 3
    # the settings of the timed runs (cuDNN autotuning on, TF32 off), warmed up alike
    with backend_flags(dev, False), torch.inference_mode():
        for _ in range(3):
            model(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize(dev)
        with profile(activities=activities) as prof:
            for _ in range(runs):
                model(*args, **kwargs)
            if cuda:
                torch.cuda.synchronize(dev)
    events = prof.events()
    if cuda:
        n = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    else:
        n = sum(
            1
            for e in events
            if e.name.startswith("aten::")
            and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
        )
    return n / runs


def _kernel_check(
    name: str, dev: torch.device, dtype: str, batches: list[int], specs: dict[str, Any]
) -> dict[str, Any]:
    """Kernels per forward against op records at batch 1, and per kernel class measured
    (torch.profiler) against the roofline on the first spec, at each batch."""
    model = load_on_device(source(name), dev).model
    out: dict[str, Any] = {"model": name, "dtype": dtype, "classes": {}}
    spec_key, spec = next(iter(specs.items()))
    for batch in sorted({1, *batches}):
        request = _request(name, dtype, batch)
        prepared = prepare(model, request, dev)
        report = modelmeter.analyze(prepared.analysis_model, request)
        if batch == 1:
            records = sum(len(n.ops) for n in report.modules())
            kernels = count_kernels(prepared.model, prepared.args, prepared.kwargs, dev)
            out.update(op_records=records, kernels=kernels, ratio=kernels / records)
        with backend_flags(dev, False), torch.inference_mode():
            for _ in range(3):
                prepared.model(*prepared.args, **prepared.kwargs)
            profile = profile_classes(
                lambda p=prepared: p.model(*p.args, **p.kwargs), dev, runs=3
            )
        roof = roofline(report, spec, phase="forward", tf32=False)
        joined = join_classes(profile, report, roof)
        out["classes"][str(batch)] = {"spec": spec_key, **joined.to_dict()}
        del prepared
    return out


def _input(name: str) -> str:
    return "1x3x299x299" if name.startswith("inception") else "1x3x224x224"


def source(label: str) -> str:
    """Where a case's model comes from: ``gpt2@s512`` is the hf:gpt2 preset (a decoder, on
    512 tokens), anything else a torchvision classifier."""
    return f"hf:{label.split('@s')[0]}" if "@s" in label else f"torchvision:{label}"


def _request(label: str, dtype: str, batch: int) -> InputRequest:
    if "@s" in label:  # a decoder: token ids of the sequence length, one forward (prefill)
        seq = int(label.split("@s")[1])
        return InputRequest.from_api(None, {"input_ids": f"1x{seq}:int64"}, batch=batch,
                                     dtype=dtype)
    return InputRequest.from_api(_input(label), batch=batch, dtype=dtype)


def _case(
    label: str,
    model: Any,
    dev: torch.device,
    dtype: str,
    batch: int,
    specs: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    request = _request(label, dtype, batch)
    prepared = prepare(model, request, dev)
    report = modelmeter.analyze(prepared.analysis_model, request)
    timings = time_model(
        prepared.model,
        prepared.args,
        prepared.kwargs,
        dev,
        warmup=args.warmup,
        repeats=args.repeats,
        tf32=False,
    )
    del prepared
    rows: dict[str, Any] = {}
    measured: MeasureResult | None = None
    for key, spec in specs.items():
        roof = roofline(report, spec, phase="forward", tf32=False)
        res = summarize(timings, report, roof, dtype=dtype)
        measured = measured or res
        assert res.prediction is not None
        rows[key] = {
            "predicted_s": res.prediction.latency_s,
            "ratio": res.ratio,
            "flops_only_s": res.prediction.flops_only_s,
            "flops_only_ratio": res.flops_only_ratio,
            "bound": res.prediction.bound,
            "overhead_share": res.prediction.overhead_s / res.prediction.latency_s
            if res.prediction.latency_s
            else 0.0,
        }
    assert measured is not None
    return {
        "model": label,
        "batch": batch,
        "dtype": dtype,
        "measured_s": measured.latency.median,
        "iqr_s": measured.latency.iqr,
        "flops": measured.flops,
        "bytes": measured.bytes_moved,
        "kernels": measured.kernels,
        "peak_memory_bytes": measured.memory.peak_bytes,
        "page_faults_per_call": measured.page_faults,
        "achieved_flops_per_s": measured.achieved_flops,
        "specs": rows,
    }


def summarise(cases: list[dict[str, Any]], spec_keys: list[str]) -> list[dict[str, Any]]:
    """Median |pred/meas - 1| per (batch, dtype) for each spec and the FLOPs-only estimate."""
    out = []
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for c in cases:
        groups.setdefault((c["batch"], c["dtype"]), []).append(c)
    for (batch, dtype), group in sorted(groups.items()):
        row: dict[str, Any] = {"batch": batch, "dtype": dtype, "models": len(group)}
        for key in spec_keys:
            pairs = [(c["specs"][key]["predicted_s"], c["measured_s"]) for c in group]
            row[f"err_{key}"] = median_error(pairs)
            ratios = [c["specs"][key]["ratio"] for c in group]
            row[f"median_ratio_{key}"] = quantile(ratios, 0.5)
            row[f"worst_{key}"] = max(ratios, key=lambda r: max(r, 1 / r) if r > 0 else 0)
            row[f"within2_{key}"] = f"{sum(0.5 <= r <= 2.0 for r in ratios)}/{len(ratios)}"
        ref = "datasheet" if "datasheet" in spec_keys else spec_keys[0]
        fo = [(c["specs"][ref]["flops_only_s"], c["measured_s"]) for c in group]
        row["err_flops_only"] = median_error(fo)
        row["median_measured_over_flops_only"] = quantile(
            [c["measured_s"] / c["specs"][ref]["flops_only_s"] for c in group], 0.5
        )
        out.append(row)
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isinf(x) else f"{100 * x:.0f}%"


def table(summary: list[dict[str, Any]], spec_keys: list[str]) -> str:
    head = [
        "batch",
        "dtype",
        "models",
        *[f"err {k}" for k in spec_keys],
        "err FLOPs-only",
        "meas / FLOPs-only",
        *(["worst built-in pred/meas", "built-in within 2x"] if "built-in" in spec_keys else []),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [str(r["batch"]), r["dtype"], str(r["models"])]
        cells += [_pct(r[f"err_{k}"]) for k in spec_keys]
        cells += [_pct(r["err_flops_only"]), f"{r['median_measured_over_flops_only']:.1f}x"]
        if "built-in" in spec_keys:
            cells += [f"{r['worst_built-in']:.2f}", r["within2_built-in"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def class_table(checks: list[dict[str, Any]]) -> str:
    """Predicted / measured time per kernel class, one column per model and batch."""
    cols = [(k["model"], b, c) for k in checks for b, c in k.get("classes", {}).items()]
    if not cols:
        return ""
    names = sorted({r["kernel_class"] for _, _, c in cols for r in c["classes"]})
    head = ["class"] + [f"{m} b{b}" for m, b, _ in cols]
    lines = [
        "pred/meas per kernel class (measured: " + cols[0][2]["basis"] + "; spec: "
        + cols[0][2]["spec"] + "; measured share of the call in brackets)",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name in names:
        cells = [name]
        for _, _, c in cols:
            row = next((r for r in c["classes"] if r["kernel_class"] == name), None)
            if row is None or not row["measured_s"]:
                cells.append("-")
                continue
            share = row["measured_s"] / c["measured_s"] if c["measured_s"] else 0.0
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
            cells.append(f"{ratio} ({100 * share:.0f}%)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, doc: dict[str, Any], spec_keys: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc["summary"] = summarise(doc["cases"], spec_keys) if doc["cases"] else []
    tmp = out / "gpu_check.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / "gpu_check.json")
    md = [
        f"# modelmeter GPU check: {doc['device_name']}",
        "",
        f"{doc['torch']}; allocator: {doc['allocator']}; {len(doc['cases'])} measurements; "
        f"warm-up {doc['warmup']}, "
        f"repeats {doc['repeats']}; float32 with TF32 off; median |predicted/measured - 1|.",
        "",
        table(doc["summary"], spec_keys) if doc["summary"] else "(no measurements)\n",
    ]
    if doc.get("kernel_check"):
        md += [
            "| model | op records | kernels per forward | kernels / records |",
            "|---|---:|---:|---:|",
        ]
        for k in doc["kernel_check"]:
            md.append(
                f"| {k['model']} | {k['op_records']} | {k['kernels']:.0f} | {k['ratio']:.2f} |"
            )
        md += ["", class_table(doc["kernel_check"]), ""]
    if doc.get("graphs_check"):
        md += ["CUDA graphs against `--runtime graphs`:", "",
               graphs_table(doc["graphs_check"], spec_keys), ""]
    if doc.get("skipped"):
        md += [f"skipped (time budget or error): {', '.join(doc['skipped'])}", ""]
    if doc.get("errors"):
        md += ["errors:", "", *(f"- {e}" for e in doc["errors"]), ""]
    (out / "gpu_check.md").write_text("\n".join(md), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="2 small models, small batches")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out")
    p.add_argument("--models", help="comma-separated torchvision names")
    p.add_argument("--batches", help="comma-separated, default 1,64 (quick: 1,4)")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument(
        "--decoder-seqs",
        default=None,
        help="sequence lengths of the decoder cases (hf:gpt2, one forward on that many "
        "tokens; default 128,512,1024 on a GPU, none on a CPU); '' for none",
    )
    p.add_argument("--decoder", default=DECODER,
                   help="the decoder of --decoder-seqs: a preset name (default gpt2) or a "
                   "config file path")
    p.add_argument("--datasheet", help="built-in spec to compare (default: from device name)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--budget", type=float, default=360.0,
                   help="seconds for the calibration and the model loop")
    p.add_argument("--total", type=float, default=None,
                   help="seconds after which the kernel checks (after the loop) are skipped")
    p.add_argument(
        "--malloc-defaults",
        action="store_true",
        help="CPU: keep glibc's malloc defaults (freed memory goes back to the OS, ops fault "
        "it in again); by default the check keeps freed memory, the steady state a roofline "
        "models",
    )
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    allocator = "default"
    if dev.type == "cpu" and not args.malloc_defaults:
        allocator = keep_freed_memory()
    models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else MODELS)
    seqs = args.decoder_seqs if args.decoder_seqs is not None else (
        "" if args.quick or dev.type == "cpu" else "128,512,1024")
    # the decoder cases first: few, and the ones a short budget must not skip
    models = [f"{args.decoder}@s{int(n)}" for n in seqs.split(",") if n.strip()] + models
    batches = [int(b) for b in (args.batches or ("1,4" if args.quick else "1,64")).split(",")]
    dtypes = [canonical_dtype(d) for d in args.dtypes.split(",")]
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.repeats = args.repeats if args.repeats is not None else (3 if args.quick else 10)
    out = Path(args.out)
    t_start = time.perf_counter()

    specs: dict[str, Any] = {}
    cal_error = None
    device_label = str(dev)
    try:
        cal = calibrate(str(dev), dtypes, quick=args.quick or dev.type == "cpu")
    except Exception as e:  # noqa: BLE001 - go on with the datasheet alone
        cal, cal_error = None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        print(f"calibration failed: {cal_error}", flush=True)
    else:
        specs.update(calibrated_variants(cal.to_spec("calibrated")))
        device_label = cal.device_name
        print(
            f"calibrated {cal.device_name} in {time.perf_counter() - t_start:.1f} s: "
            + ", ".join(f"matmul {k} {format_rate(v)}" for k, v in cal.matmul.items())
            + f", copy {format_rate(cal.bandwidth, 'B/s')}, "
            "overhead/op "
            + ", ".join(f"{k} {v * 1e6:.1f}us" for k, v in cal.overheads.items()),
            flush=True,
        )
    if dev.type == "cuda":
        device_label = torch.cuda.get_device_name(dev)
    sheet = args.datasheet or guess_datasheet(device_label, builtin_names())
    if sheet:  # the built-in spec as shipped (its attainable figures), and its datasheet alone
        specs["built-in"] = load_spec(sheet)
        specs["datasheet"] = load_spec(sheet).ideal()
    print(f"datasheet spec: {sheet or 'none'}", flush=True)
    if not specs:
        print("nothing to compare against: no calibration and no datasheet spec", flush=True)
        return 1
    spec_keys = list(specs)
    doc: dict[str, Any] = {
        "schema": "modelmeter.gpu_check/1",
        "device": str(dev),
        "device_name": device_label,
        "torch": f"torch {torch.__version__}",
        "allocator": allocator,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "calibrated_spec": specs["calibrated"].to_dict() if "calibrated" in specs else None,
        "calibration_error": cal_error,
        "calibration_warnings": cal.warnings if cal is not None else [],
        "datasheet_spec": sheet,
        "cases": [],
        "kernel_check": [],
        "skipped": [],
        "errors": [],
    }
    loop_end = t_start + args.budget
    first = spec_keys[0]
    for name in models:
        if time.perf_counter() > loop_end:
            doc["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        model = None
        try:
            model = load_on_device(source(name), dev).model
            for dtype in dtypes:
                for batch in batches:
                    doc["cases"].append(_case(name, model, dev, dtype, batch, specs, args))
        except Exception as e:  # noqa: BLE001 - one model failing must not stop the run
            doc["skipped"].append(name)
            doc["errors"].append(f"{name}: {type(e).__name__}: {first_line(e, '')}")
            print(f"{name:<22} failed: {type(e).__name__}: {first_line(e, '')}", flush=True)
        finally:
            del model
            gc.collect()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        mine = [c for c in doc["cases"] if c["model"] == name]
        _write(out, doc, spec_keys)
        if not mine:
            continue
        print(
            f"{name:<22} {time.perf_counter() - t0:5.1f} s  "
            + "  ".join(
                f"b{c['batch']} {c['dtype'][:4]} {c['measured_s'] * 1e3:.2f}ms "
                f"x{c['specs'][first]['ratio']:.2f}"
                for c in mine
            ),
            flush=True,
        )
    # Kernels per forward vs op records, after the timed runs (the profiler must not touch
    # them); short, and outside the loop's budget.
    for name in [m for m in models if "@s" not in m][:1] if args.quick else KERNEL_CHECK:
        if args.total is not None and time.perf_counter() > t_start + args.total:
            doc["skipped"].append(f"kernel check {name}")
            continue
        try:
            doc["kernel_check"].append(_kernel_check(name, dev, dtypes[-1], batches, specs))
        except Exception as e:  # noqa: BLE001 - a side check: record and go on
            doc["errors"].append(f"kernel check {name}: {type(e).__name__}: {first_line(e, '')}")
    # a few models replayed from CUDA graphs against the graphs runtime (bench/graphs_check.py)
    run_graphs_check(doc, models, dev, dtypes[-1], batches, specs,
                     lambda n: load_on_device(source(n), dev).model, _request,
                     t_start + args.total if args.total is not None else math.inf)
    _write(out, doc, spec_keys)
    print()
    print(table(doc["summary"], spec_keys), end="")
    for k in doc["kernel_check"]:
        print(
            f"kernels/op records {k['model']}: {k['kernels']:.0f}/{k['op_records']} "
            f"= {k['ratio']:.2f}"
        )
    print(class_table(doc["kernel_check"]), end="")
    print(graphs_table(doc.get("graphs_check", []), spec_keys), end="")
    print(f"total {time.perf_counter() - t_start:.0f} s; wrote {out}/gpu_check.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
