"""Invalid ONNX graphs are refused when loaded, with one line naming the problem (exit 2),
rather than counted as if they were valid: each case is one small edit of a valid Relu or
MatMul graph, as a file and as an in-memory proto."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_graphs import init, model, vi  # noqa: E402

from modelmeter import analyze  # noqa: E402
from modelmeter.cli import main  # noqa: E402
from modelmeter.errors import InputError  # noqa: E402

node = helper.make_node


def _matmul() -> onnx.ModelProto:
    """y = Relu(x @ w), x 2x4, w 4x3 (12 floats, 48 bytes of raw data)."""
    return model(
        [node("MatMul", ["x", "w"], ["h"], name="mm"), node("Relu", ["h"], ["y"], name="relu")],
        [vi("x", [2, 4])], [vi("y", None)], [init("w", (4, 3))],
    )


def _duplicate_input(m):  # noqa: ANN001, ANN202
    m.graph.input.append(vi("x", [2, 4]))


def _unwritten_output(m):  # noqa: ANN001, ANN202
    m.graph.output.append(vi("ghost", [2, 3]))


def _undefined_read(m):  # noqa: ANN001, ANN202
    m.graph.node[1].input[0] = "nowhere"


def _undefined_read_in_a_branch(m):  # noqa: ANN001, ANN202
    # the branch that is never taken reads a value nothing defines
    then = helper.make_graph([node("Relu", ["h"], ["a"])], "then", [], [vi("a", None)])
    other = helper.make_graph([node("Relu", ["nowhere"], ["b"])], "else", [], [vi("b", None)])
    cond = numpy_helper.from_array(np.array(True), "cond")
    m.graph.initializer.append(cond)
    m.graph.node.append(node("If", ["cond"], ["z"], then_branch=then, else_branch=other))
    m.graph.output.append(vi("z", None))


def _huge_initializer_without_data(m):  # noqa: ANN001, ANN202
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    del w.dims[:]
    w.dims.extend([4, 2**38])  # 2^40 elements, no bytes, no external data


def _raw_data_too_short(m):  # noqa: ANN001, ANN202
    w = m.graph.initializer[0]
    w.raw_data = w.raw_data[:40]


def _typed_data_does_not_fit(m):  # noqa: ANN001, ANN202
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.float_data.extend([0.5] * 11)


def _unknown_opset_version(m):  # noqa: ANN001, ANN202
    m.opset_import[0].version = 999


def _opset_imported_twice(m):  # noqa: ANN001, ANN202
    m.opset_import.append(helper.make_opsetid("ai.onnx", 17))


def _duplicate_initializer(m):  # noqa: ANN001, ANN202
    m.graph.initializer.append(init("w", (4, 3)))


CASES = [
    (_duplicate_input, "graph has two inputs named 'x'"),
    (_unwritten_output, "graph output 'ghost' is written by no node"),
    (_undefined_read, "node 'relu' of graph reads 'nowhere', which no node"),
    (_undefined_read_in_a_branch, "reads 'nowhere', which no node"),
    (_huge_initializer_without_data, "declares 1099511627776 elements"),
    (_raw_data_too_short, "has 40 bytes of data, but its dims [4, 3] and type need 48"),
    (_typed_data_does_not_fit, "holds 11 value(s) in float_data, but its dims [4, 3]"),
    (_unknown_opset_version, "opset 'ai.onnx' version 999 is unknown"),
    (_opset_imported_twice, "opset domain 'ai.onnx' is imported twice"),
    (_duplicate_initializer, "graph has two initializers named 'w'"),
]


@pytest.mark.parametrize(("edit", "says"), CASES, ids=[c[0].__name__[1:] for c in CASES])
def test_invalid_graph_is_one_error_line(tmp_path, edit, says) -> None:
    m = _matmul()
    edit(m)
    path = tmp_path / "bad.onnx"
    onnx.save_model(m, str(path))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["analyze", str(path)])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1, err.getvalue()
    assert lines[0].startswith("modelmeter: error: invalid ONNX model 'bad.onnx': ")
    assert says in lines[0], lines[0]
    with pytest.raises(InputError, match="invalid ONNX model"):
        analyze(m)  # the same check on an in-memory proto


def test_the_valid_graph_is_counted() -> None:
    # 2x4 @ 4x3: 24 MACs, 2 * 24 = 48 FLOPs (Relu is counted as 0 FLOPs)
    r = analyze(_matmul())
    assert r.total().cost.macs == 24 and r.total().cost.flops == 48


def test_external_and_typed_data_of_the_right_size_pass(tmp_path) -> None:
    m = _matmul()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.float_data.extend([0.5] * 12)
    assert analyze(m).total().cost.macs == 24
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "w.bin"
    (tmp_path / "w.bin").write_bytes(bytes(48))
    onnx.save_model(m, str(tmp_path / "m.onnx"))
    assert analyze(str(tmp_path / "m.onnx")).total().cost.macs == 24
