"""onnxruntime's per-node cost (``[overhead.runtimes] ort``, hardware/calibrate_ort.py): the
figure's arithmetic on stub timings, the skips, and on this CPU a sanity range."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmeter.hardware.calibrate_ort import LONG, SHORT, measure_ort, node_figures


def test_per_node_is_the_slope_and_the_rest_is_per_run() -> None:
    # 16 nodes in 6.4 us, 256 in 54.4 us: (54.4 - 6.4) / (256 - 16) = 48 / 240 = 0.2 us per
    # node; per run 6.4 - 16 x 0.2 = 3.2 us (t / n would give 0.4 and 0.2125 us per node)
    per_node, per_run = node_figures({256: 54.4e-6, 16: 6.4e-6})
    assert per_node == pytest.approx(0.2e-6)
    assert per_run == pytest.approx(3.2e-6)


def test_a_slope_that_is_not_positive_falls_back_to_the_long_chains_mean() -> None:
    # a busy spell made the short chain slower than the long one: 9 us / 256 nodes
    per_node, per_run = node_figures({16: 10e-6, 256: 9e-6})
    assert per_node == pytest.approx(9e-6 / 256)
    assert per_run == 0.0


def test_not_measured_off_the_cpu_or_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    details: dict = {}
    assert measure_ort("cuda", details) is None
    assert "CPU" in details["ort"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    details = {}
    assert measure_ort("cpu", details) is None
    assert "not importable" in details["ort"]


def test_measured_on_this_cpu() -> None:
    pytest.importorskip("onnxruntime")
    details: dict = {}
    per_node = measure_ort("cpu", details, rounds=3)
    # sanity only: any CPU spends between 10 ns and 100 us of onnxruntime's work on a node
    # of 16 elements (about 0.2 us on the 2-core VM this was written on)
    assert per_node is not None and 1e-8 < per_node < 1e-4
    assert f"{SHORT} nodes" in details["ort"] and f"{LONG} nodes" in details["ort"]


def test_default_optimisation_keeps_every_node_of_the_chain(tmp_path: Path) -> None:
    """Why timing with optimisation off is the same graph: at ORT_ENABLE_ALL onnxruntime
    fuses and removes none of the chain's Add/Relu nodes."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from modelmeter.frontends.onnx.ort_bench import chain_model

    model = chain_model(8)
    assert [n.op_type for n in onnx.load_from_string(model).graph.node] == ["Add", "Relu"] * 4
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    assert len(onnx.load(str(tmp_path / "optimised.onnx")).graph.node) == 8


def test_the_figure_goes_to_the_spec_and_the_printout(tmp_path: Path) -> None:
    from modelmeter.analysis.measure import Calibration
    from modelmeter.hardware import load_spec
    from modelmeter.hardware.schema_toml import to_toml
    from modelmeter.render.calibration import render_calibration

    cal = Calibration(device="cpu", device_name="Toy CPU", torch_version="torch 9.9",
                      vendor="Toy", kind="cpu", matmul={"float32": 1e11},
                      vector={"float32": 1e10}, bandwidth=4e10, kernel_overhead=5e-6,
                      launch_overhead=1e-6, runtime_overhead={"ort": 0.2e-6})
    spec = cal.to_spec("toy-cpu")
    assert dict(spec.runtime_overhead) == {"ort": 0.2e-6}
    assert spec.host_overhead(runtime="ort") == 0.2e-6  # --runtime ort prices a node with it
    assert spec.host_overhead(runtime="eager") == 5e-6
    assert "[overhead.runtimes] ort" in spec.notes
    path = tmp_path / "toy.toml"
    path.write_text(to_toml(spec), encoding="utf-8")
    assert load_spec(str(path)).runtime_overhead["ort"] == pytest.approx(0.2e-6)
    assert "onnxruntime        0.200 us per node" in render_calibration(cal, str(path))
    # none measured: no [overhead.runtimes] in the spec, no line printed
    plain = Calibration(**{**cal.__dict__, "runtime_overhead": {}})
    assert not plain.to_spec("toy-cpu").runtime_overhead
    assert "onnxruntime" not in render_calibration(plain, str(path))
