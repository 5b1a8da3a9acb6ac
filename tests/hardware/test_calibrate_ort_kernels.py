"""``calibrate --runtime ort``: onnxruntime's own kernel rates (hardware/calibrate_ort_kernels.py,
frontends/onnx/ort_kernels.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmeter.hardware.calibrate_fractions import fraction
from modelmeter.hardware.calibrate_ort_kernels import node_seconds
from tests.cli_helpers import one_error, run


def test_a_node_is_the_difference_of_two_chains_less_its_per_node_cost() -> None:
    # chains of 1 and 3 nodes: 50 us and 250 us per run -> (250 - 50) / 2 = 100 us per node
    assert node_seconds(50e-6, 250e-6, 2, 0.0) == pytest.approx(100e-6)
    assert fraction(50e-6, node_seconds(50e-6, 250e-6, 2, 0.0)) == pytest.approx(0.5)  # 50/100
    # less a 10 us per-node cost: 90 us of kernel -> 50 / 90 = 0.5556
    assert fraction(50e-6, node_seconds(50e-6, 250e-6, 2, 10e-6)) == pytest.approx(50 / 90)
    # a roofline above the measured time is kept at 1; one far below it at 0.01
    assert fraction(300e-6, 100e-6) == 1.0
    assert fraction(1e-9, 100e-6) == 0.01


@pytest.mark.parametrize(("argv", "says"), [
    (["--device", "cuda", "--runtime", "ort"], "use --device cpu"),
    (["--runtime", "ort", "--dtypes", "bf16"], "float32 only"),
    (["--threads", "2"], "--threads sets onnxruntime's threads"),
    (["--runtime", "ort", "--threads", "0"], "--threads must be 1 or more"),
])
def test_refusals_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      argv: list[str], says: str) -> None:
    out = tmp_path / "x.toml"
    code, _, err = run(capsys, "calibrate", "-o", str(out), "-q", *argv)
    assert code == 2 and says in one_error(err)
    assert not out.exists()


def test_without_onnxruntime_refused_in_one_line(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    code, _, err = run(capsys, "calibrate", "-o", str(tmp_path / "x.toml"), "--runtime", "ort")
    assert code == 2 and "needs onnxruntime and onnx" in one_error(err)


@pytest.mark.parametrize(("cls", "shape", "expected", "flops"), [
    # dense 3x3: N*Co*H*W outputs x (2*Ci*9 - 1) = 1*8*4*4 x (2*8*9 - 1) = 128 x 143
    ("conv", (1, 8, 4, 4), "conv", 128 * 143),
    # depthwise 3x3: 128 outputs x (2*9 - 1) = 128 x 17
    ("depthwise", (1, 8, 4, 4), "depthwise", 128 * 17),
    ("pool", (1, 8, 4, 4), "pool", None),
    ("norm", (1, 8, 4, 4), "norm", None),
    # 1x1, 8 channels in: 128 outputs x (2*8 - 1) = 128 x 15
    ("conv memory", (1, 8, 4, 4), "conv", 128 * 15),
    ("vector", (64,), "elementwise", 64),  # one add per element
    ("gelu", (64,), "activation", 64 * 9),  # tanh-GELU: 9 FLOPs per element = 576
])
def test_each_node_is_analysed_as_one_op_of_its_class(cls: str, shape: tuple[int, ...],
                                                      expected: str, flops: int | None) -> None:
    pytest.importorskip("onnx")
    from modelmeter.analysis.kernels import record_class
    from modelmeter.frontends.onnx.ort_kernels import chain
    from modelmeter.usecases.analyze import analyze

    ops = [op for node in analyze(chain(cls, shape, 1)).modules() for op in node.ops]
    assert [record_class(op) for op in ops] == [expected]
    if flops is not None:
        assert ops[0].cost.flops == flops
    three = analyze(chain(cls, shape, 3))  # the chain: three such nodes, three times the work
    assert sum(len(n.ops) for n in three.modules()) == 3
    assert three.total().cost.flops == 3 * analyze(chain(cls, shape, 1)).total().cost.flops


def test_the_matmul_node() -> None:
    pytest.importorskip("onnx")
    from modelmeter.analysis.kernels import record_class
    from modelmeter.frontends.onnx.ort_kernels import matmul
    from modelmeter.usecases.analyze import analyze

    (op,) = [op for node in analyze(matmul(16)).modules() for op in node.ops]
    assert record_class(op) == "matmul"
    assert op.cost.flops == 16 * 16 * (2 * 16 - 1)  # n*n outputs x (2n - 1) = 7936


def test_a_quick_ort_calibration_of_this_cpu(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from modelmeter.hardware import dump_toml, load_file
    from modelmeter.hardware.calibrate import calibrate
    from modelmeter.render.calibration import render_calibration

    cal = calibrate("cpu", quick=True, runtime="ort")
    assert cal.torch_version.startswith("onnxruntime ")
    assert 1e9 < cal.matmul["float32"] < 1e14 and 1e8 < cal.vector["float32"] < 1e13
    assert 1e9 < cal.bandwidth < 1e13
    per_node = cal.runtime_overhead["ort"]
    assert 1e-8 < per_node < 1e-4 and cal.kernel_overhead == per_node
    assert set(cal.kernels) == {"conv", "depthwise", "pool", "norm"}
    assert all(0.01 <= v <= 1.0 for v in [*cal.kernels.values(), *cal.kernels_memory.values()])
    path = tmp_path / "ort.toml"
    path.write_text(dump_toml(cal.to_spec("ort-cpu")), encoding="utf-8")
    spec = load_file(str(path))
    assert spec.host_overhead(runtime="ort") == pytest.approx(per_node)
    assert "1 intra-op thread" in spec.notes and "MatMul node" in spec.notes
    assert "onnxruntime" in render_calibration(cal, str(path))


def test_an_ort_calibration_prints_its_per_node_cost_once() -> None:
    # an onnxruntime calibration's overhead is per node, and its "tiny add" is that figure
    # again: printed once, as per node; a PyTorch one keeps both lines
    from modelmeter.analysis.measure import Calibration
    from modelmeter.render.calibration import render_calibration

    def cal(runtime: str) -> Calibration:
        return Calibration(device="cpu", device_name="Box", torch_version=runtime, vendor="-",
                           kind="cpu", matmul={"float32": 2e11}, vector={"float32": 2e10},
                           bandwidth=5e10, kernel_overhead=1.75e-7, launch_overhead=1.75e-7)

    ort = render_calibration(cal("onnxruntime 1.32.0"), "o.toml")
    assert "overhead per node (onnxruntime)" in ort and "0.17 us" in ort
    assert "one tiny add" not in ort
    torch_text = render_calibration(cal("torch 2.14.1"), "t.toml")
    assert "overhead per op" in torch_text and "one tiny add" in torch_text
