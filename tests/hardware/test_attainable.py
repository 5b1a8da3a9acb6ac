"""Attainable figures in spec files: the [attainable] section's schema (old files still load),
the built-in H100's measured figures, the carried-over estimates of the other NVIDIA GPUs,
and the --ideal / --runtime options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import one_error, run

import modelmeter.usecases.analyze
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpecError, dump_toml, list_specs, load_spec, spec_from_dict
from modelmeter.hardware.estimate import carry_over, own_matrix_peak
from modelmeter.hardware.loader import attainable_toml
from modelmeter.report import Report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
H100 = load_spec("h100-sxm")


def base_doc() -> dict[str, Any]:
    return {"name": "x", "vendor": "v", "kind": "gpu", "memory": {"bandwidth": "1T"},
            "compute": {"bfloat16": "100T"}}


# ---- the schema --------------------------------------------------------------------------


def test_a_file_without_attainable_loads_as_before() -> None:
    spec = spec_from_dict(base_doc())
    assert spec.attainable is None and spec.attained() is spec
    assert "attainable" not in spec.to_dict()
    assert spec.launch_overhead is None and dict(spec.runtime_overhead) == {}


def test_attainable_round_trips_through_toml() -> None:
    doc = base_doc()
    doc["overhead"] = {"kernel": "4us", "overlap": True, "launch": "1us",
                       "runtimes": {"ort": "2us"}}
    doc["attainable"] = {
        "basis": "estimated", "source": "s", "uncertainty": "2x",
        "memory": {"bandwidth": "0.9T"}, "compute": {"bfloat16": "80T"},
        "overhead": {"kernel": "20us", "launch": "3us", "dtypes": {"bfloat16": "22us"}},
        "efficiency": {"kernels": {"conv": {"compute": 0.5, "memory": 0.8}},
                       "dtypes": {"bfloat16": {"matmul": 0.7}}},
    }  # fmt: skip
    spec = spec_from_dict(doc)
    again = spec_from_dict(tomllib.loads(dump_toml(spec)))
    assert again == spec
    a = spec.attainable
    assert a is not None
    assert (a.bandwidth, a.compute["bfloat16"], a.kernel_overhead, a.launch_overhead) == (
        0.9e12, 80e12, 20e-6, 3e-6
    )
    assert spec.launch_s == 1e-6 and spec.runtime_overhead["ort"] == 2e-6
    used = spec.attained()
    # bf16 ops: 22 us host (the dtype's), 3 us launch; matmul at 0.7 in bf16; conv 0.5/0.8
    assert used.host_overhead("bfloat16") == 22e-6 and used.launch_s == 3e-6
    assert used.kernel_factors("matmul", "bfloat16") == (0.7, 0.7)
    assert used.kernel_factors("conv", "bfloat16") == (0.5, 0.8)
    assert used.host_overhead("bfloat16", "ort") == 2e-6  # the datasheet's ort figure stays


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"basis": "guess"}, "attainable.basis must be one of measured, estimated"),
        ({"memory": {"bandwidth": "-1T"}}, "attainable.memory.bandwidth must be > 0"),
        ({"compute": {"fp16": "1T"}}, "attainable.compute.fp16 is not a known dtype"),
        ({"overhead": {"runtimes": {"eager": "1us"}}},
         "attainable.overhead.runtimes.eager is not a runtime with its own overhead"),
        ({"efficiency": {"kernels": {"conv": 1.5}}},
         "attainable.efficiency.kernels.conv must be at most 1"),
        ({"speed": 1}, "attainable.speed is not a known field"),
    ],
)
def test_bad_attainable_fields_are_named(section: dict[str, Any], message: str) -> None:
    doc = base_doc()
    doc["attainable"] = {"basis": "measured", **section}
    with pytest.raises(HardwareSpecError, match=message.replace(".", r"\.")):
        spec_from_dict(doc, "f.toml")


# ---- the built-in chips ------------------------------------------------------------------


def test_h100_ships_measured_figures_beside_its_datasheet() -> None:
    a = H100.attainable
    assert a is not None and a.basis == "measured" and "torch 2.11.0+cu130" in a.source
    assert H100.compute["bfloat16"] == 989.5e12 and a.compute["bfloat16"] == 795.9e12
    assert H100.bandwidth == 3.35e12 and a.bandwidth == 3.004e12
    # the figures the calibration measured (bench/results/h100-calibrated.toml), rounded
    cal = tomllib.loads((REPO / "bench/results/h100-calibrated.toml").read_text())
    assert a.compute["float32"] == pytest.approx(51.5942459e12, rel=1e-3)
    assert a.kernel_factors("conv", "bfloat16")[0] == pytest.approx(
        cal["efficiency"]["dtypes"]["bfloat16"]["conv"]["compute"], rel=1e-3
    )


def test_every_nvidia_gpu_has_attainable_figures_labelled() -> None:
    for spec in list_specs():
        if spec.vendor != "NVIDIA" or spec.kind != "gpu":
            continue
        assert spec.attainable is not None, spec.name
        expected = "measured" if spec.name == "h100-sxm" else "estimated"
        assert spec.attainable.basis == expected, spec.name
        if expected == "estimated":
            assert spec.attainable.uncertainty and "h100-sxm" in spec.attainable.source


def test_estimates_follow_the_carry_over_rule() -> None:
    a100 = load_spec("a100-sxm-80gb")
    a = a100.attainable
    assert a is not None
    # bf16: 312T x 795.9 / 989.5 = 250.96T; float32 (vector peak): 19.5T x 51.59 / 67 = 15.015T
    assert a.compute["bfloat16"] == pytest.approx(250.96e12, rel=1e-3)
    assert a.compute["float32"] == pytest.approx(15.015e12, rel=1e-3)
    # bandwidth: 2.039T x 3.004 / 3.35 = 1.8284T; the vector rate scales with the FP32 peak:
    # 19.5T x 25.8 / 67 = 7.5090T
    assert a.bandwidth == pytest.approx(1.8284e12, rel=1e-3)
    assert a.vector["float32"] == pytest.approx(7.509e12, rel=1e-3)
    # host and launch times and the class efficiencies: H100's unchanged
    h = H100.attainable
    assert h is not None
    assert (a.kernel_overhead, a.launch_overhead) == (h.kernel_overhead, h.launch_overhead)
    assert a.kernel_factors("conv", "bfloat16") == h.kernel_factors("conv", "bfloat16")
    # the V100 has no bf16 tensor cores: no bf16 matrix figure is carried over
    v100 = load_spec("v100-sxm2").attainable
    assert v100 is not None and "bfloat16" not in v100.compute and own_matrix_peak(
        load_spec("v100-sxm2"), "bfloat16") is None
    # the shipped sections are what carry_over gives today
    for name in ("a10", "h200", "t4", "rtx-4090"):
        target = load_spec(name)
        assert target.attainable is not None
        again = carry_over(H100, target, uncertainty=target.attainable.uncertainty)
        assert attainable_toml(target.attainable) == attainable_toml(again), name


def test_the_estimate_script_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench/estimate_attainable.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- the command line --------------------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, handmade_factory: Callable[[], Report]) -> None:
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze",
                        lambda *a, **k: handmade_factory())


def test_ideal_and_runtime_on_the_command_line(
    capsys: pytest.CaptureFixture[str], fake: None
) -> None:
    outs = {}
    for extra in ([], ["--ideal"], ["--runtime", "graphs"]):
        code, out, _ = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "-f", "json", *extra)
        assert code == 0
        outs[" ".join(extra)] = json.loads(out)
    report = Report.from_dict(outs[""])
    for key, kw in (("", {}), ("--ideal", {"ideal": True}),
                    ("--runtime graphs", {"runtime": "graphs"})):
        d = outs[key]["roofline"]
        assert d["latency_s"] == pytest.approx(roofline(report, H100, **kw).latency_s)
    assert outs[""]["roofline"]["figures"] == "attainable"
    assert outs["--ideal"]["roofline"]["figures"] == "ideal"
    assert outs["--ideal"]["hardware"]["memory"]["bandwidth"] == 3.35e12
    assert outs["--runtime graphs"]["roofline"]["runtime"] == "graphs"
    # the tiny handmade model is host-bound in eager: graphs is faster
    assert outs["--runtime graphs"]["roofline"]["latency_s"] < outs[""]["roofline"]["latency_s"]


def test_table_says_which_figures_and_runtime(
    capsys: pytest.CaptureFixture[str], fake: None
) -> None:
    code, out, _ = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "--runtime", "ort")
    assert code == 0
    assert "attainable (measured" in out and "runtime ort" in out


def test_bad_runtime_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], fake: None) -> None:
    code, _, err = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "--runtime", "jit")
    assert code == 2
    assert "--runtime" in one_error(err)


def test_h200_carries_h100s_figures_over_by_the_ratio_rule() -> None:
    h200 = load_spec("h200")
    a, h = h200.attainable, H100.attainable
    assert a is not None and h is not None and a.basis == "estimated"
    # bandwidth 4.8T x 3.004 / 3.35 = 4.3043T; vector rate 67T x 25.8 / 67 = 25.8T (same FP32 units)
    assert a.bandwidth == pytest.approx(4.3043e12, rel=1e-4)
    assert a.vector["float32"] == pytest.approx(25.8e12, rel=1e-4)
    # same GH100 compute on the datasheet: 989.5T x 795.9 / 989.5 = 795.9T
    assert a.compute["bfloat16"] == pytest.approx(795.9e12)
    # host per op and per module call, launch times, grouped class, depthwise exponent: H100's
    assert (a.kernel_overhead, a.module_call, a.launch_overhead) == (18e-6, 3e-6, 1.1e-6)
    assert dict(a.launch_classes) == dict(h.launch_classes) and a.launch_classes["conv"] == 10.4e-6
    assert a.kernel_factors("grouped", "bfloat16") == h.kernel_factors("grouped", "bfloat16")
    assert dict(a.depthwise_taps) == dict(h.depthwise_taps) == {"bfloat16": 0.5,
                                                                 "float16": 0.5}
    assert "ratio rule" in (REPO / "src/modelmeter/hardware/specs/h200.toml").read_text()
