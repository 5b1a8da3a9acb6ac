"""onnxruntime's own kernels, timed for ``modelmeter calibrate --runtime ort`` (what the
times mean: :mod:`modelmeter.hardware.calibrate_ort_kernels`).

Each benchmark is a chain of ``k`` nodes of one ONNX op, built in memory with the onnx
helper API (shape-preserving, so that a chain of 1 and one of 3 differ by exactly two nodes
of the same work): a square ``MatMul`` (one node), ``Add`` and tanh-``Gelu`` on a
cache-resident vector, a 3x3
``Conv``, a depthwise 3x3 ``Conv`` (group = channels), a 3x3 ``MaxPool`` (stride 1, pad 1),
a ``BatchNormalization`` and a 1x1 ``Conv`` with few channels (the memory side of
convolutions). Sessions run on the CPU provider at onnxruntime's default optimisation level
(ORT_ENABLE_ALL, as ``measure`` runs an ONNX file: convolutions become NCHWc convolutions,
with layout reorders at the chain's ends, which the difference of two chains cancels) with
``threads`` intra-op threads. A time is the least of a few rounds, a round enough
back-to-back ``run`` calls to last about 2 ms.
"""

from __future__ import annotations

import math
import time
from typing import Any

from modelmeter.frontends.onnx.ort_bench import ROUND_S, session

OPSET = 17
GELU_OPSET = 20  # Gelu is a standard op from opset 20


def _tensor(name: str, shape: tuple[int, ...]) -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _init(name: str, shape: tuple[int, ...], positive: bool = False) -> Any:
    import numpy as np
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    a = rng.random(shape) + 0.5 if positive else rng.standard_normal(shape)
    return numpy_helper.from_array(a.astype(np.float32), name)


def _node(cls: str, src: str, out: str, c: int) -> Any:
    from onnx import helper

    if cls in ("conv", "depthwise", "conv memory"):
        pads = [0] * 4 if cls == "conv memory" else [1] * 4
        group = c if cls == "depthwise" else 1
        return helper.make_node("Conv", [src, "w"], [out], group=group, pads=pads)
    if cls == "pool":
        return helper.make_node("MaxPool", [src], [out], kernel_shape=[3, 3], strides=[1, 1],
                                pads=[1, 1, 1, 1])
    if cls == "norm":
        return helper.make_node("BatchNormalization", [src, "s", "b", "m", "v"], [out])
    if cls == "gelu":
        return helper.make_node("Gelu", [src], [out], approximate="tanh")
    return helper.make_node("Add", [src, src], [out])  # vector


def chain(cls: str, shape: tuple[int, ...], k: int) -> Any:
    """An ``onnx.ModelProto``: ``k`` nodes of class ``cls`` in a chain on an input of
    ``shape`` (NCHW; a flat vector for ``vector``, an Add, and ``gelu``)."""
    from onnx import helper

    c = shape[1] if len(shape) == 4 else 0
    inits = []
    if cls in ("conv", "conv memory"):
        inits = [_init("w", (c, c) + ((1, 1) if cls == "conv memory" else (3, 3)))]
    elif cls == "depthwise":
        inits = [_init("w", (c, 1, 3, 3))]
    elif cls == "norm":
        inits = [_init(n, (c,), positive=True) for n in ("s", "b", "m", "v")]
    nodes = [_node(cls, "x" if i == 0 else f"t{i - 1}", "y" if i == k - 1 else f"t{i}", c)
             for i in range(k)]
    graph = helper.make_graph(nodes, cls, [_tensor("x", shape)], [_tensor("y", shape)], inits)
    opset = GELU_OPSET if cls == "gelu" else OPSET
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def matmul(n: int) -> Any:
    """An ``onnx.ModelProto`` of one square ``MatMul`` node: [n, n] x [n, n]."""
    from onnx import helper

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul",
                              [_tensor("a", (n, n)), _tensor("b", (n, n))], [_tensor("y", (n, n))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def best(ort: Any, model: Any, threads: int, rounds: int, budget_s: float) -> float:
    """The least seconds per ``run`` of ``model`` over up to ``rounds`` rounds (stopping
    once ``budget_s`` is spent); inputs random, float32."""
    import numpy as np

    s = session(ort, model.SerializeToString(), threads, optimize=True)
    rng = np.random.default_rng(1)
    feeds = {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
             .astype(np.float32) for i in model.graph.input}
    s.run(None, feeds)
    t0 = time.perf_counter()
    s.run(None, feeds)
    calls = max(1, min(200, math.ceil(ROUND_S / max(time.perf_counter() - t0, 1e-7))))
    end = time.perf_counter() + budget_s
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            s.run(None, feeds)
        out.append((time.perf_counter() - t0) / calls)
        if time.perf_counter() > end:
            break
    return min(out)


__all__ = ["OPSET", "best", "chain", "matmul"]
