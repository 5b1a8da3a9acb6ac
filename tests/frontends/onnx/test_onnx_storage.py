"""Storage formats on an ONNX graph: the initializers read by Gemm/MatMul as weights are
priced at the weight format, with rows along the dimension that meets the activation."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")

import onnx  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_graphs import init, model, vi  # noqa: E402

import modelmeter  # noqa: E402


def test_gemm_and_matmul_weights_at_int8(tmp_path: Path) -> None:
    """x[4, 256] -> Gemm(w [384, 256], transB=1, bias 384) -> MatMul(w2 [384, 128])."""
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
        helper.make_node("MatMul", ["h", "w2"], ["y"]),
    ]
    m = model(nodes, [vi("x", [4, 256])], [vi("y", [4, 128])],
              [init("w", (384, 256)), init("b", (384,)), init("w2", (384, 128))], opset=17)  # fmt: skip
    path = tmp_path / "mlp.onnx"
    onnx.save(m, str(path))
    plain = modelmeter.analyze(str(path))
    r = modelmeter.analyze(str(path), weights="int8")
    assert (r.total().macs, r.total().flops) == (plain.total().macs, plain.total().flops)
    # int8 per output channel, one fp16 scale per row of the reduction dimension:
    # Gemm's w is [N=384, K=256] (transB): 98,304 + 384 * 2 = 99,072;
    # MatMul's w2 is [K=384, N=128]: 49,152 + 128 * 2 = 49,408 -> 148,480
    assert r.storage is not None and r.storage.tensors == 2
    assert r.storage.nbytes == 99_072 + 49_408
    # the fp32 bias (384 * 4 = 1,536) keeps its dtype
    assert r.size_by_dtype()["native"] == 148_480 + 1_536
    assert r.total().weight_bytes == 148_480 + 1_536
