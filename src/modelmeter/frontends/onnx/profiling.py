"""Time per kernel class of an ONNX file (``measure --per-class``), from onnxruntime's own
profiler (CPU)."""

from __future__ import annotations

import os
import time
from typing import Any

from modelmeter.analysis.classes import ClassMeasured, ClassProfile
from modelmeter.analysis.kernels import kernel_class
from modelmeter.frontends.onnx.runtime import ort_module
from modelmeter.registry import family_of


def profile_classes(
    path: str, providers: list[Any], feeds: dict[str, Any], runs: int, warmup: int = 1
) -> ClassProfile:
    """Time per kernel class from onnxruntime's own profiler (CPU): a second session with
    profiling on runs ``runs`` times after ``warmup`` runs; each node's kernel time goes to the
    class of its op type (a fused ``FusedConv`` to ``conv``; a convolution with one input
    channel per group to ``depthwise``; ops modelmeter has no formula for, such as layout
    reorders, to ``other``). The profile is written to a temporary folder and removed."""
    import json
    import shutil
    import tempfile

    ort = ort_module()
    folder = tempfile.mkdtemp(prefix="modelmeter-ort-")
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        for _ in range(warmup):
            session.run(None, feeds)
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.run(None, feeds)
            walls.append(time.perf_counter() - t0)
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    nodes = nodes[len(nodes) * warmup // (runs + warmup):]  # drop the warm-up runs' nodes
    seconds: dict[str, float] = {}
    ops: dict[str, int] = {}
    for e in nodes:
        label = _node_class(e.get("args", {}))
        seconds[label] = seconds.get(label, 0.0) + float(e.get("dur", 0)) * 1e-6
        ops[label] = ops.get(label, 0) + 1
    return ClassProfile(
        method="onnxruntime profiler: kernel time of every graph node it ran",
        basis="onnxruntime kernel time per node (after its graph optimisations)",
        runs=runs,
        profiled_s=sorted(walls)[len(walls) // 2],
        mean_s=sum(walls) / len(walls) if walls else 0.0,
        classes=[
            ClassMeasured(kernel_class=k, seconds=seconds[k] / runs, ops=ops[k] / runs)
            for k in sorted(seconds, key=lambda k: -seconds[k])
        ],
        device_time=True,
        notes=[
            "onnxruntime fuses ops (an activation into its convolution, for example): a class "
            "with op records but no profiled ops was fused into another"
        ],
    )


def _node_class(args: dict[str, Any]) -> str:
    """The kernel class of a profiled node, by the roofline's one rule (analysis.kernels)."""
    op = str(args.get("op_name", ""))
    family = family_of("onnx." + op) or family_of("onnx." + op.removeprefix("Fused"))
    shapes = [next(iter(d.values()), []) for d in args.get("input_type_shape", [])]
    return kernel_class(family, shapes)


__all__ = ["profile_classes"]
