"""Property: any mutation of a valid small ONNX graph ends in a report (exit 0) or one error
line (exit 2) within a time bound -- never exit 1 ("internal error"), an uncaught exception
or a traceback. Hypothesis mutates dims, dtypes, attribute values, inputs, outputs and nodes
(drop, duplicate, rename, swap op types), sets huge sizes and corrupts the serialized bytes.
Derandomized, so that CI runs the same cases every time."""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_graphs import init, model, vi  # noqa: E402

from modelmeter.cli import main  # noqa: E402

node = helper.make_node
I64, BOOL = TensorProto.INT64, TensorProto.BOOL
SECONDS = 20  # per case, generous on a loaded machine; cases take well under 1 s
PEAK_BYTES = 128 << 20  # per case: no tensor of a huge size is ever built


def _base() -> onnx.ModelProto:
    """Conv, Relu, a shape computation feeding Reshape, MatMul, Softmax, a constant-count
    Loop and a ConstantOfShape: every kind of node the walk handles."""
    body = helper.make_graph(
        [node("Relu", ["st"], ["st2"]), node("Identity", ["cond"], ["cond2"])], "body",
        [vi("it", [], I64), vi("cond", [], BOOL), vi("st", [2, 5])],
        [vi("cond2", [], BOOL), vi("st2", [2, 5])],
    )
    ints = {n: numpy_helper.from_array(np.array(v, np.int64), n)
            for n, v in (("zero", 0), ("zero1", [0]), ("rest", [64]), ("trips", 3))}
    return model(
        [
            node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
            node("Relu", ["c"], ["r"], name="relu"),
            node("Shape", ["r"], ["s"], name="shape"),
            node("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
            node("Unsqueeze", ["n", "zero1"], ["n1"], name="unsq"),
            node("Concat", ["n1", "rest"], ["shape2"], axis=0, name="concat"),
            node("Reshape", ["r", "shape2"], ["f"], name="reshape"),
            node("MatMul", ["f", "fc"], ["m"], name="fc"),
            node("Softmax", ["m"], ["sm"], axis=-1, name="softmax"),
            node("Constant", [], ["go"], value=helper.make_tensor("go_v", BOOL, [], [1])),
            node("Loop", ["trips", "go", "sm"], ["y"], body=body, name="loop"),
            node("ConstantOfShape", ["s"], ["z"], name="cos"),
            node("Tile", ["zero1", "rest"], ["tiled"], name="tile"),
        ],
        [vi("x", ["batch", 3, 4, 4])],
        [vi("y", None), vi("z", None), vi("tiled", None)],
        [numpy_helper.from_array(np.full((4, 3, 3, 3), 0.5, np.float32), "w"),
         init("b", (4,)), init("fc", (64, 5)), *ints.values()],
    )


BASE = _base()
OPS = ["Relu", "Conv", "MatMul", "Gemm", "Loop", "Scan", "If", "LSTM", "MaxPool", "AveragePool",
       "Einsum", "TopK", "Resize", "Pad", "Range", "Tile", "Expand", "ConstantOfShape",
       "Reshape", "Softmax", "BatchNormalization", "ConvTranspose", "Unknown"]
SIZES = st.sampled_from([0, 1, 2, 3, 7, 64, -1, -(2**62), 3 * 10**7, 2**31, 2**40, 2**62, 2**63 - 1])


def _nodes(m: onnx.ModelProto) -> list[onnx.NodeProto]:
    out, stack = [], [m.graph]
    while stack:
        g = stack.pop()
        for n in g.node:
            out.append(n)
            stack.extend(a.g for a in n.attribute if a.HasField("g"))
    return out


@st.composite
def _mutation(draw: st.DrawFn, m: onnx.ModelProto) -> None:
    g = m.graph
    nodes = _nodes(m)
    nd = nodes[draw(st.integers(0, len(nodes) - 1))]
    kind = draw(st.integers(0, 12))
    if kind == 0:  # an attribute's value
        ints = [a for a in nd.attribute if a.type in (2, 7)]
        if ints:
            a = ints[draw(st.integers(0, len(ints) - 1))]
            if a.type == 2:
                a.i = draw(SIZES)
            elif a.ints:
                a.ints[draw(st.integers(0, len(a.ints) - 1))] = draw(SIZES)
    elif kind == 1:  # the op type
        nd.op_type = draw(st.sampled_from(OPS))
    elif kind == 2 and nd.input:  # rewire an input (to anything, or nothing)
        names = [o for n in nodes for o in n.output] + [t.name for t in g.initializer]
        nd.input[draw(st.integers(0, len(nd.input) - 1))] = draw(
            st.sampled_from([*names, "", "undefined"]))
    elif kind == 3:  # an initializer's dims (data left as it is)
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        if t.dims:
            t.dims[draw(st.integers(0, len(t.dims) - 1))] = draw(SIZES)
    elif kind == 4:  # an initializer's dtype
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        t.data_type = draw(st.sampled_from([0, 1, 2, 6, 7, 9, 10, 11, 16, 21, 99]))
    elif kind == 5:  # drop a node
        g.node.remove(g.node[draw(st.integers(0, len(g.node) - 1))])
    elif kind == 6:  # duplicate a node
        g.node.insert(draw(st.integers(0, len(g.node))), g.node[draw(
            st.integers(0, len(g.node) - 1))])
    elif kind == 7 and nd.output:  # rename an output
        nd.output[0] = draw(st.sampled_from(["x", "y", "renamed", "w", ""]))
    elif kind == 8:  # the input's shape
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[draw(st.integers(0, len(dims) - 1))]
        d.dim_value = max(0, draw(SIZES))
    elif kind == 9:  # a graph input or output duplicated, dropped or renamed
        field = g.input if draw(st.booleans()) else g.output
        choice = draw(st.integers(0, 2))
        if choice == 0:
            field.append(field[0])
        elif choice == 1 and len(field) > 1:
            field.remove(field[-1])
        else:
            field[0].name = draw(st.sampled_from(["renamed", "w", "m", "x"]))
    elif kind == 10:  # the loop's trip count or the opset
        if draw(st.booleans()):
            t = next(t for t in g.initializer if t.name == "trips")
            t.CopyFrom(numpy_helper.from_array(np.array(draw(SIZES), np.int64), "trips"))
        else:
            m.opset_import[0].version = draw(st.sampled_from([1, 7, 11, 13, 21, 99]))
    elif kind == 11:  # element type of the graph input
        g.input[0].type.tensor_type.elem_type = draw(st.sampled_from([0, 1, 7, 9, 10, 99]))
    else:  # an integer constant's value (shapes, counts) set to any size
        name = draw(st.sampled_from(["zero", "zero1", "rest", "trips"]))
        t = next(t for t in g.initializer if t.name == name)
        dims = tuple(t.dims)
        if all(0 <= d <= 4 for d in dims):
            values = [draw(SIZES) for _ in range(int(np.prod(dims)))]
            value = np.array(values, np.int64).reshape(dims)
            t.CopyFrom(numpy_helper.from_array(value, name))


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(BASE)
    for _ in range(draw(st.integers(1, 3))):
        draw(_mutation(m))
    data = bytearray(m.SerializeToString())
    if draw(st.integers(0, 3)) == 0:  # corrupt the bytes
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
        for _ in range(draw(st.integers(1, 6))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=_files())
def test_mutated_graphs_end_in_a_report_or_one_error_line(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    path.write_bytes(data)
    err = io.StringIO()
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["analyze", str(path), "--dim", "batch=2", "--format", "json"])
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    seconds = time.perf_counter() - start
    text = err.getvalue()
    lines = [ln for ln in text.strip().splitlines() if ": warning:" not in ln]
    assert code in (0, 2), text
    assert "internal error" not in text and "Traceback" not in text, text
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("modelmeter: error: "), text
    assert seconds < SECONDS, f"took {seconds:.1f} s"
    assert peak < PEAK_BYTES, f"allocated {peak / 2**20:.0f} MiB"


def test_the_base_graph_is_counted() -> None:
    err = io.StringIO()
    path_free = onnx.ModelProto()
    path_free.CopyFrom(BASE)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        from modelmeter import analyze

        r = analyze(path_free, dims={"batch": 2})
    # Conv 2x4x4x4 outputs x 27 MACs = 3,456; MatMul 2x64 @ 64x5 = 640; MACs 4,096;
    # the Loop runs Relu 3 times; Tile of a constant is folded at load
    assert r.total().cost.macs == 4096 and r.unsupported == {}
    assert r.by_operator()["onnx.Relu"].calls == 1 + 3
