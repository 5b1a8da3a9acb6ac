"""onnxruntime's cost per node, measured by ``modelmeter calibrate`` on the CPU:
``[overhead.runtimes] ort`` of the spec it writes, the per-op host time ``o`` of
``--runtime ort`` (docs/measure.md, "What calibrate measures"; docs/hardware.md, "Runtimes").

Two chains of tiny nodes (:mod:`modelmeter.frontends.onnx.ort_bench`: SHORT and LONG nodes
on a 16-element tensor, one thread) are timed; the median seconds per run of each give::

    per node = (t(LONG) - t(SHORT)) / (LONG - SHORT)
    per run  = t(SHORT) - SHORT x per node

The slope, not t / n: one ``InferenceSession.run`` from Python also pays a fixed cost
(binding the inputs, allocating the outputs: about 3.5 us here), paid once per model run,
which divided over a short chain's nodes would be counted again per node (0.57 us per node
over 8 nodes against 0.20 over 256 here). The roofline prices nodes, so the per-run cost is
recorded in the details only. When the slope is not positive (a busy spell) the long
chain's t / n stands in.

Not measured without onnxruntime (said in the details), nor on a device other than the CPU
(onnxruntime's CUDA provider has its own costs; not calibrated yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SHORT, LONG = 16, 256


def node_figures(times: Mapping[int, float]) -> tuple[float, float]:
    """(seconds per node, seconds per run) from the median seconds per run of chains of
    two lengths (see the module docstring)."""
    (n1, t1), (n2, t2) = sorted(times.items())[0], sorted(times.items())[-1]
    slope = (t2 - t1) / (n2 - n1) if n2 != n1 else 0.0
    if slope <= 0:
        return t2 / n2, 0.0
    return slope, max(0.0, t1 - n1 * slope)


def measure_ort(device_type: str, details: dict[str, Any], rounds: int = 7) -> float | None:
    """onnxruntime's seconds per node on the CPU, or None (the reason in ``details``)."""
    if device_type != "cpu":
        details["ort"] = "not measured (onnxruntime's per-node cost is calibrated on the CPU)"
        return None
    try:
        import onnx  # noqa: F401 - the chain is built with its helper API
        import onnxruntime as ort
    except ImportError:
        details["ort"] = "not measured (onnxruntime or onnx not importable)"
        return None
    from modelmeter.frontends.onnx.ort_bench import medians, run_times

    times = medians(run_times(ort, (SHORT, LONG), rounds))
    per_node, per_run = node_figures(times)
    details["ort"] = (f"onnxruntime {ort.__version__}, 1 thread, optimisation off: "
                      f"{SHORT} nodes {times[SHORT] * 1e6:.1f}us, {LONG} nodes "
                      f"{times[LONG] * 1e6:.1f}us per run: {per_node * 1e6:.3f}us per node, "
                      f"{per_run * 1e6:.1f}us per run")
    return per_node


__all__ = ["LONG", "SHORT", "measure_ort", "node_figures"]
