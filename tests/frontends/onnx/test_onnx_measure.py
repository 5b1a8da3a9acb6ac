"""``modelmeter measure FILE.onnx``: the file run by onnxruntime, joined to its analysis."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import helper  # noqa: E402
from onnx_graphs import init, model, vi  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.cli import main  # noqa: E402
from modelmeter.errors import InputError  # noqa: E402
from modelmeter.hardware import spec_from_peak  # noqa: E402
from modelmeter.usecases.measure import measure  # noqa: E402


@pytest.fixture
def gemm_file(tmp_path: Path) -> Path:
    """x[batch, 16] -> Gemm(16 -> 32, bias) -> Relu: a symbolic batch dimension."""
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    m = model(
        nodes,
        [vi("x", ["batch", 16])],
        [vi("y", ["batch", 32])],
        [init("w", (32, 16)), init("b", (32,))],
        opset=17,
    )
    path = tmp_path / "gemm.onnx"
    onnx.save(m, str(path))
    return path


def test_measured_and_joined_to_the_analysis(gemm_file: Path) -> None:
    before = (gemm_file.read_bytes(), os.stat(gemm_file).st_mtime_ns)
    spec = spec_from_peak(1e12, 1e11, dtype="float32", name="toy", kernel_overhead=1e-6)
    r = measure(str(gemm_file), dims={"batch": 4}, warmup=1, repeats=5, hardware=spec)
    # Gemm 4x16 @ 16x32 + bias: 4*32 outputs x 2*16 = 4096 FLOPs, 2048 MACs; Relu 4*32 = 128
    assert (r.flops, r.macs, r.batch, r.kernels) == (4096 + 128, 2048, 4, 2)
    assert r.device == "cpu" and r.repeats == 5 and r.latency.median > 0
    assert r.torch_version.startswith("onnxruntime ")
    report = modelmeter.analyze(str(gemm_file), dims={"batch": 4})
    roof = modelmeter.roofline(report, spec, phase="forward")
    assert r.prediction is not None
    assert r.prediction.latency_s == pytest.approx(roof.latency_s)
    assert any("onnxruntime" in n and "unfused" in n for n in r.notes)
    d = r.to_dict()
    assert d["runtime"].startswith("onnxruntime ") and d["torch_version"] is None
    assert d["inputs"] == [{"shape": [4, 16], "dtype": "float32", "name": "x"}]
    # modelmeter.measure takes the file too (batch sets the first dimension)
    assert modelmeter.measure(str(gemm_file), batch=2, warmup=0, repeats=2).batch == 2
    # the user's file is only read
    assert (gemm_file.read_bytes(), os.stat(gemm_file).st_mtime_ns) == before


def test_pytorch_only_options_are_refused(gemm_file: Path) -> None:
    for kw, says in (
        ({"dtype": "bfloat16"}, "--dtype"),
        ({"per_module": True}, "--per-module"),
        ({"device": "mps"}, "cannot run an ONNX file on 'mps'"),
    ):
        with pytest.raises(InputError, match=says):
            measure(str(gemm_file), dims={"batch": 1}, **kw)  # type: ignore[arg-type]


def test_cli(gemm_file: Path, capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["measure", str(gemm_file), "--repeats", "2", "--warmup", "1"]
    assert main([*argv, "--dim", "batch=3", "--format", "json"]) == 0
    out, err = capfd.readouterr()
    d = json.loads(out)
    assert d["batch"] == 3 and d["analysis"]["macs"] == 3 * 16 * 32 and err == ""
    assert main([*argv, "--batch", "2", "--hardware", "epyc-9654"]) == 0
    out, _ = capfd.readouterr()
    assert "onnxruntime" in out and "predicted vs measured on epyc-9654" in out
    # unset batch dimension, and a PyTorch-only option: one line, exit 2
    for extra in ([], ["--batch", "2", "--dtype", "fp16"], ["--batch", "2", "--per-module"]):
        assert main([*argv, *extra]) == 2
        _, err = capfd.readouterr()
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_per_class_from_the_onnxruntime_profiler(tmp_path: Path) -> None:
    import torch
    from onnx_graphs import export

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),  # conv
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
        torch.nn.ReLU(),  # activation: onnxruntime fuses it into the convolution
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 16 * 16, 4),  # Gemm: matmul
    ).eval()
    path = export(net, (torch.randn(1, 3, 16, 16),), tmp_path / "net.onnx", dynamo=False)
    r = measure(str(path), warmup=1, repeats=3, per_class=True, hardware="epyc-9654")
    assert r.per_class is not None and r.per_class.profile.device_time
    rows = {row.kernel_class: row for row in r.per_class.rows}
    # one op record and one profiled node per run for each of these
    for cls in ("conv", "depthwise", "matmul"):
        assert (rows[cls].records, rows[cls].ops) == (1, 1), cls
        assert rows[cls].measured_s > 0 and rows[cls].predicted_s is not None
    assert rows["activation"].records == 1 and rows["activation"].ops == 0  # fused away
    assert r.per_class.profile.runs == 3
    # the profile went to a temporary folder, now gone; nothing written beside the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_time_onnx_on_a_given_number_of_threads(gemm_file: Path) -> None:
    """bench/ort_loop.py times on one intra-op thread; measure keeps onnxruntime's pool."""
    from modelmeter.frontends.onnx.timing import time_onnx
    from modelmeter.report import InputSpec

    inputs = [InputSpec(shape=(4, 16), dtype="float32", name="x")]
    t = time_onnx(str(gemm_file), inputs, "cpu", warmup=1, repeats=2, threads=1)
    assert t.threads == 1 and len(t.samples) == 2
    assert any("1 intra-op thread(s)" in n for n in t.notes)
    default = time_onnx(str(gemm_file), inputs, "cpu", warmup=1, repeats=2)
    assert default.threads is None and any("default thread pool" in n for n in default.notes)
