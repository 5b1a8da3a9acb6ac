"""Bad ONNX input on the command line: one clear line on stderr, exit code 2, no file written.
And the good path: ``modelmeter analyze model.onnx`` end to end."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import helper  # noqa: E402
from onnx_graphs import init, model, vi  # noqa: E402

from modelmeter.cli import main  # noqa: E402

node = helper.make_node


def _conv_model() -> onnx.ModelProto:
    """x (batch, 3, 8, 8) -> Conv 4x3x3x3 (pads 1) + bias -> Relu."""
    rng = np.random.default_rng(1)
    w = onnx.numpy_helper.from_array(rng.random((4, 3, 3, 3), dtype=np.float32), "w")
    return model(
        [node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["y"])],
        [vi("x", ["batch", 3, 8, 8])],
        [vi("y", None)],
        [w, init("b", (4,))],
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelmeter: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_cli_analyses_an_onnx_file(tmp_path, capsys) -> None:
    path = tmp_path / "conv.onnx"
    onnx.save_model(_conv_model(), str(path))
    out_file = tmp_path / "r.json"
    code, _, err = _run(
        capsys, "analyze", str(path), "--dim", "batch=2", "--format", "json", "-o", str(out_file)
    )
    assert code == 0, err
    d = json.loads(out_file.read_text())
    # MACs 2 * 256 outputs * 27 = 13,824; FLOPs conv 2*MACs (bias) + Relu 512 = 28,160
    assert (d["frontend"], d["total"]["macs"], d["total"]["flops"]) == ("onnx", 13824, 28160)
    assert d["inputs"] == [{"shape": [2, 3, 8, 8], "dtype": "float32", "name": "x"}]
    code, out, _ = _run(capsys, "analyze", str(path), "--input", "x=1x3x8x8", "--format", "csv")
    assert code == 0 and "6912" in out
    code, out, _ = _run(capsys, "analyze", str(path), "--batch", "3", "--format", "md")
    assert code == 0 and "20,736" in out  # 3 * 6,912 MACs


def test_not_onnx_truncated_and_missing(tmp_path, capsys) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("hello, this is not a model\n")
    code, out, err = _run(capsys, "analyze", str(text))
    assert code == 2 and out == ""
    _one_error_line(err, "notes.onnx", "not a readable ONNX model")

    good = tmp_path / "good.onnx"
    onnx.save_model(_conv_model(), str(good))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    report = tmp_path / "report.json"
    code, _, err = _run(capsys, "analyze", str(cut), "--format", "json", "-o", str(report))
    assert code == 2 and not report.exists()
    _one_error_line(err, "cut.onnx", "corrupt or truncated")

    code, _, err = _run(capsys, "analyze", str(tmp_path / "absent.onnx"))
    assert code == 2
    _one_error_line(err, "no such file")


def test_missing_external_data(tmp_path, capsys) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save_model(_conv_model(), str(path), save_as_external_data=True,
                    location="ext.bin", size_threshold=0)
    os.remove(tmp_path / "ext.bin")
    report = tmp_path / "out.md"
    code, _, err = _run(capsys, "analyze", str(path), "--dim", "batch=1", "-o", str(report))
    assert code == 2 and not report.exists()
    _one_error_line(err, "missing external data", "ext.bin")


def test_unknown_dimension_names_the_dimension(tmp_path, capsys) -> None:
    path = tmp_path / "dyn.onnx"
    onnx.save_model(_conv_model(), str(path))
    code, _, err = _run(capsys, "analyze", str(path))
    assert code == 2
    _one_error_line(err, "dimension 'batch'", "--dim batch=N")
    code, _, err = _run(capsys, "analyze", str(path), "--dim", "height=3")
    assert code == 2
    _one_error_line(err, "no symbolic dimension 'height'", "batch")
    code, _, err = _run(capsys, "analyze", str(path), "--dim", "batch=1", "--backward")
    assert code == 2
    _one_error_line(err, "no backward pass")
