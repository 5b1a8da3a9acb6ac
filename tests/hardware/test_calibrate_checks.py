"""Plausibility warnings on a calibration's figures (hardware/calibrate_checks.py), with stubbed
figures: the audit's busy-machine run and the recorded idle ones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelmeter.analysis.measure import Calibration
from modelmeter.hardware import calibrate as calibrate_module
from modelmeter.hardware.calibrate_checks import host_warnings, rate_warnings
from modelmeter.hardware.calibrate_host import HostFit, fit_host


def test_the_busy_runs_figures_are_flagged() -> None:
    # the audit's run: matmul 22 GFLOP/s, vector 0.148 GFLOP/s, copy (say) 40 GB/s, n = 512
    vec, per_byte, mm = rate_warnings({"float32": 22e9}, {"float32": 0.148e9}, 40e9,
                                      {"float32": 512})
    # 0.148 / 22 = 0.67% < 1%
    assert vec.startswith("vector float32 148 MFLOP/s is 0.67% of the float32 matmul's 22 GFLOP/s")
    # 0.148e9 / 40e9 = 0.0037 FLOP per copied byte < 0.05
    assert per_byte.startswith("vector float32 148 MFLOP/s is 0.0037 FLOP per byte of the 40 GB/s")
    # 22e9 / 40e9 = 0.55 FLOP per copied byte < min(1.5, 512 / (1.5 x 4) = 85.3) = 1.5
    assert mm.startswith("matmul float32 22 GFLOP/s is 0.55 FLOP per byte of the 40 GB/s copy")
    assert "below 1.5: a square matmul of n=512 is compute-bound" in mm
    # a busy quick run on the 2-core VM: matmul 16.91 G, vector 0.1989 G, copy 16.84 GB/s.
    # 0.1989 / 16.91 = 1.18% (not under 1%), but 0.1989 / 16.84 = 0.012 FLOP per byte < 0.05
    # and 16.91 / 16.84 = 1.0 FLOP per byte < 1.5
    per_byte, mm = rate_warnings({"float32": 16.91e9}, {"float32": 0.1989e9}, 16.84e9,
                                 {"float32": 512})
    assert "is 0.012 FLOP per byte of the 16.8 GB/s copy bandwidth (below 0.05" in per_byte
    assert "matmul float32 16.9 GFLOP/s is 1 FLOP per byte" in mm


def test_idle_figures_give_no_warning() -> None:
    # docs/measure.md's quiet 2-core run: matmul 115 GFLOP/s, copy 45.7 GB/s (2.5 FLOP per
    # byte > 1.5), vector 18 GFLOP/s (16% > 1%; 0.39 FLOP per copied byte > 0.05)
    assert rate_warnings({"float32": 115e9}, {"float32": 18e9}, 45.7e9, {"float32": 512}) == []
    # bench/results/h100-calibrated.toml: bfloat16's vector 5.86 T is 0.74% of its own
    # matmul (795.9 T) but 11% of float32's (51.6 T), the reference; 51.6 / 3.0 = 17 > 1.5;
    # vector per copied byte 3.127 / 3.004 = 1.04 and 5.856 / 3.004 = 1.95 > 0.05
    h100 = {"float32": 51.59e12, "tfloat32": 412.5e12, "bfloat16": 795.9e12}
    vector = {"float32": 3.127e12, "bfloat16": 5.856e12}
    sizes = dict.fromkeys(h100, 8192)
    assert rate_warnings(h100, vector, 3.004e12, sizes) == []
    # without a float32 matmul, the dtype's own at a tenth of the floor: 0.74% > 0.1%
    assert rate_warnings({"bfloat16": 795.9e12}, {"bfloat16": 5.856e12}, 3.004e12,
                         {"bfloat16": 8192}) == []
    # ... and 0.5 T is 0.063% < 0.1% (0.5 / 3.004 = 0.17 FLOP per copied byte: no second)
    (w,) = rate_warnings({"bfloat16": 795.9e12}, {"bfloat16": 0.5e12}, 3.004e12,
                         {"bfloat16": 8192})
    assert "0.06% of the bfloat16 matmul's 796 TFLOP/s (below 0.1%" in w


def test_a_tiny_matmul_is_held_to_its_own_intensity() -> None:
    # n = 4 in float32: 2 x 4^3 = 128 FLOPs over 3 x 16 x 4 = 192 bytes, 4 / 6 = 0.667 FLOP
    # per byte; at 10 GB/s the floor is 6.67 GFLOP/s: 6 G warns, 7 G does not
    (w,) = rate_warnings({"float32": 6e9}, {}, 10e9, {"float32": 4})
    assert "(below 0.667:" in w
    assert rate_warnings({"float32": 7e9}, {}, 10e9, {"float32": 4}) == []


def test_a_clamped_host_fit_says_so() -> None:
    # the audit: 935us measured against 1,102us predicted at 1 layer, residual -167us; at 4
    # layers (58 calls) say 2,500 against 2,600: residual -100us. module = (-100 - -167) /
    # (58 - 19) = 1.72us (kept); step = -167 - 19 x 1.72 = -199.6us: clamped, warned
    fit = fit_host([(1, 19, 935e-6, 1102e-6), (4, 58, 2500e-6, 2600e-6)])
    assert fit.module_s == pytest.approx(67e-6 / 39) and fit.step_s == 0.0
    (w,) = fit.warnings
    assert w.startswith("step fitted -200us, written as 0: the decode step measured less")
    # a deeper model no slower per call: module (400 - 400) ... here 400 -> 380: -20 / 39
    # = -0.513us, clamped; step = 400us from the 1-layer residual alone (kept)
    fit = fit_host([(1, 19, 1000e-6, 600e-6), (4, 58, 2000e-6, 1620e-6)])
    assert fit.module_s == 0.0 and fit.step_s == pytest.approx(400e-6)
    (w,) = fit.warnings
    assert w.startswith("module_call fitted -0.513us, written as 0")
    # a sound fit (test_generation_host's): no warning
    assert fit_host([(1, 19, 1000e-6, 600e-6), (4, 58, 2800e-6, 1620e-6)]).warnings == ()
    assert host_warnings(0.0, 0.0) == []


def test_the_warnings_reach_the_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    # the host fit's warnings are added to the calibration's list (the CLI prints them,
    # the spec's notes say them)
    cal = Calibration(device="cpu", device_name="cpu", torch_version="t", vendor="v",
                      kind="cpu", matmul={"float32": 1e11}, vector={"float32": 1e10},
                      bandwidth=1e10, kernel_overhead=1e-5, launch_overhead=1e-6,
                      warnings=["x varied 2.0x"])
    fit = HostFit(0.0, 1e-4, ((1, 19, 1e-3, 1.1e-3), (4, 58, 2e-3, 2e-3)), ("module_call w",))
    from modelmeter.hardware import calibrate_host

    monkeypatch.setattr(calibrate_host, "measure_host", lambda *a, **k: fit)
    out = calibrate_module._with_host(cal, "cpu")
    assert out.warnings == ["x varied 2.0x", "module_call w"]
    assert "UNSTABLE (busy device?): x varied 2.0x, module_call w" in out.to_spec("c").notes
    assert replace(out, warnings=[]).to_spec("c").notes.count("UNSTABLE") == 0
