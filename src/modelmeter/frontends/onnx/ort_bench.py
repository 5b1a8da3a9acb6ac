"""onnxruntime's cost per node, timed for ``modelmeter calibrate`` (what the timings mean:
:mod:`modelmeter.hardware.calibrate_ort`).

A chain of ``n`` nodes on a 1x16 float32 tensor (``Add`` of a constant and ``Relu`` in
turn: each node's arithmetic is a few nanoseconds, so the run time is onnxruntime's own per-node
work) is built in memory with the onnx helper API and run in an ``InferenceSession`` on the
CPU provider with one intra-op and one inter-op thread, graph optimisation off: the
measurement needs the number of nodes that run, and with it off that is the ``n`` built
(at the default level, ORT_ENABLE_ALL, onnxruntime 1.32 kept every node of this chain and
timed the same). Each round times enough back-to-back ``run`` calls to last about 2 ms.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

SIZE = 16  # elements of the chain's tensor
ROUND_S = 2e-3  # a round lasts about this long


def chain_model(n: int) -> bytes:
    """A serialised ONNX model of ``n`` nodes: x -> Add(b) -> Relu -> Add(b) -> ... -> y."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    prev = "x"
    for i in range(n):
        out = "y" if i == n - 1 else f"t{i}"
        inputs = [prev, "b"] if i % 2 == 0 else [prev]
        nodes.append(helper.make_node("Add" if i % 2 == 0 else "Relu", inputs, [out]))
        prev = out
    graph = helper.make_graph(
        nodes, "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, SIZE])],
        [numpy_helper.from_array(np.full((1, SIZE), 0.5, dtype=np.float32), "b")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def session(ort: Any, model: bytes, threads: int = 1, *, optimize: bool = False) -> Any:
    """A CPU session of ``model`` with ``threads`` intra-op threads (one inter-op thread),
    graph optimisation off unless ``optimize`` (then onnxruntime's default level, as
    ``measure`` runs an ONNX file)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def run_times(ort: Any, lengths: tuple[int, ...], rounds: int = 7) -> dict[int, list[float]]:
    """Per chain length, the seconds per ``run`` of each round (rounds interleaved across
    the lengths, so that a busy spell costs them alike)."""
    import numpy as np

    feeds = {"x": np.ones((1, SIZE), dtype=np.float32)}
    sessions = {n: session(ort, chain_model(n)) for n in lengths}
    calls: dict[int, int] = {}
    for n, s in sessions.items():  # warm up, and size a round from the best of a few calls
        first = []
        for _ in range(10):
            t0 = time.perf_counter()
            s.run(None, feeds)
            first.append(time.perf_counter() - t0)
        calls[n] = max(1, int(ROUND_S / max(min(first), 1e-7)))
    out: dict[int, list[float]] = {n: [] for n in lengths}
    for _ in range(rounds):
        for n, s in sessions.items():
            t0 = time.perf_counter()
            for _ in range(calls[n]):
                s.run(None, feeds)
            out[n].append((time.perf_counter() - t0) / calls[n])
    return out


def medians(times: dict[int, list[float]]) -> dict[int, float]:
    return {n: statistics.median(v) for n, v in times.items()}


__all__ = ["SIZE", "chain_model", "medians", "run_times", "session"]
