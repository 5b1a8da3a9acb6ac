"""The ONNX frontend's op records carry storage ids (the data flow the fusion rules follow):
a Reshape aliases its input's storage, an initializer read as a weight has id 0."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

from onnx import helper  # noqa: E402
from onnx_graphs import analyze, init, model, vi  # noqa: E402

from modelmeter.analysis.fusion import fuse  # noqa: E402


def test_records_carry_storage_ids_through_a_reshape() -> None:
    # x 2x3 @ W (3x4, a weight), Reshape to 8 (an alias, no record), Relu: 2 records
    m = model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Reshape", ["h", "shape"], ["h2"]),
            helper.make_node("Relu", ["h2"], ["y"]),
        ],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("w", (3, 4)), init("shape", (1,), value=8, dtype="int64")],
    )
    r = analyze(m)
    matmul, relu = sorted((o for n in r.modules() for o in n.ops), key=lambda o: o.seq)
    assert matmul.reads[0] != 0 and matmul.reads[1] == 0  # x, then the weight
    assert relu.reads == matmul.writes  # through the Reshape: the same storage
    # so the Relu joins the MatMul's kernel by data flow: one kernel, reading x (24) and
    # W (48), writing y (32): 24 + 48 + 32 - 32 = 72 read, 32 + 32 - 32 = 32 written
    (k,) = [o.cost for n in fuse(r).modules() for o in n.ops]
    assert (k.bytes_read, k.bytes_written) == (72, 32)
