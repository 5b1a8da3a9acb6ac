"""The graphs runtime against CUDA graphs (part of bench/gpu_check.py; not a test).

For a few models (GRAPHS_CHECK) at each batch, in one dtype: the forward captured into one
CUDA graph on a static input (after warm-up calls on a side stream, cuDNN autotuning on,
TF32 off) and the graph replayed; measured = the median seconds per replay over rounds,
predicted = the roofline under ``--runtime graphs`` (no host time: each op's busy plus launch
time, back to back) on every spec the check compares. On a device without CUDA graphs (the
CPU quick run) nothing is measured, and ``graphs_check_note`` says so.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.frontends.torch.building import prepare
from modelmeter.frontends.torch.device import backend_flags

# the models profiled per kernel class first (their launch times are read off those
# profiles), then two the profiles did not see
GRAPHS_CHECK = ["resnet50", "mobilenet_v3_large", "vit_b_16", "swin_t", "resnet18",
                "efficientnet_b0"]


def replay_seconds(model: Any, args: tuple, kwargs: dict, dev: torch.device,
                   rounds: int = 10, replays: int = 5) -> float:
    """Median seconds per replay of ``model``'s forward captured into one CUDA graph."""
    side = torch.cuda.Stream(dev)
    side.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(side):
        for _ in range(3):
            model(*args, **kwargs)
    torch.cuda.current_stream(dev).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(*args, **kwargs)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(rounds):
        torch.cuda.synchronize(dev)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / replays)
    return statistics.median(times)


def graphs_case(label: str, model: Any, dev: torch.device, dtype: str, batch: int,
                specs: dict[str, Any], request: Any) -> dict[str, Any]:
    """One model at one batch: the replay's measured seconds and each spec's graphs
    prediction (ratio = predicted / measured)."""
    prepared = prepare(model, request, dev)
    report = modelmeter.analyze(prepared.analysis_model, request)
    with backend_flags(dev, False), torch.inference_mode():
        measured = replay_seconds(prepared.model, prepared.args, prepared.kwargs, dev)
    rows = {}
    for key, spec in specs.items():
        pred = roofline(report, spec, phase="forward", tf32=False, runtime="graphs").latency_s
        rows[key] = {"predicted_s": pred, "ratio": pred / measured}
    return {"model": label, "batch": batch, "dtype": dtype, "measured_s": measured,
            "specs": rows}


def run_graphs_check(doc: dict, models: list[str], dev: torch.device, dtype: str,
                     batches: list[int], specs: dict[str, Any], load: Any, request: Any,
                     deadline: float) -> None:
    """Every GRAPHS_CHECK model of ``models`` into ``doc["graphs_check"]`` (CUDA only; a
    failure or the deadline is recorded, never raised: a side check)."""
    out = doc.setdefault("graphs_check", [])
    if dev.type != "cuda":  # said apart: "skipped" lists what a budget or an error cut
        doc["graphs_check_note"] = "not run: no CUDA graphs on this device"
        return
    for name in [m for m in GRAPHS_CHECK if m in models]:
        if time.perf_counter() > deadline:
            doc["skipped"].append(f"graphs check {name}")
            continue
        try:
            model = load(name)
            for batch in batches:
                out.append(graphs_case(name, model, dev, dtype, batch, specs,
                                       request(name, dtype, batch)))
        except Exception as e:  # noqa: BLE001 - record and go on
            doc["errors"].append(f"graphs check {name}: {type(e).__name__}: "
                                 f"{(str(e).splitlines() or [''])[0][:200]}")
        finally:
            torch.cuda.empty_cache()


def graphs_table(rows: list[dict], spec_keys: list[str]) -> str:
    """Markdown: measured replay time and pred/meas per spec, one line per case."""
    if not rows:
        return ""
    head = "| model | batch | dtype | replay measured | " + " | ".join(
        f"{k} pred/meas" for k in spec_keys) + " |"
    lines = [head, "|---|---:|---|---:|" + "---:|" * len(spec_keys)]
    for r in rows:
        ratios = " | ".join(f"{r['specs'][k]['ratio']:.2f}" if k in r["specs"] else "-"
                            for k in spec_keys)
        lines.append(f"| {r['model']} | {r['batch']} | {r['dtype']} | "
                     f"{r['measured_s'] * 1e3:.3f} ms | {ratios} |")
    return "\n".join(lines) + "\n"
