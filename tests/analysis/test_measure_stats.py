"""Pure parts of measure mode: statistics, the join of timings with a report and a roofline,
and a calibration turned into a spec. Every expected value is derived by hand below."""

from __future__ import annotations

import math

import pytest

from modelmeter.analysis.measure import Calibration, summarize
from modelmeter.analysis.roofline import roofline
from modelmeter.analysis.timings import (
    MemoryUse,
    Timings,
    median_error,
    quantile,
    ratio_error,
    timing_stats,
)
from modelmeter.hardware import HardwareSpec, dump_toml, load_file


def test_quantile_linear_interpolation() -> None:
    # sorted [1, 2, 3, 4]: h = (n-1)q = 3q
    # q=0.25: h=0.75 -> 1 + 0.75*(2-1) = 1.75; q=0.5: h=1.5 -> 2.5; q=0.75: h=2.25 -> 3.25
    xs = [4.0, 1.0, 3.0, 2.0]
    assert quantile(xs, 0.25) == pytest.approx(1.75)
    assert quantile(xs, 0.5) == pytest.approx(2.5)
    assert quantile(xs, 0.75) == pytest.approx(3.25)
    assert quantile(xs, 0.0) == 1.0 and quantile(xs, 1.0) == 4.0
    assert quantile([7.0], 0.3) == 7.0
    with pytest.raises(ValueError):
        quantile([], 0.5)
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


def test_timing_stats_odd_count() -> None:
    # sorted [1, 2, 3, 5, 10]: median x[2] = 3; q1 at h=1 -> 2; q3 at h=3 -> 5; IQR 3
    # mean (1+2+3+5+10)/5 = 4.2; relative IQR 3/3 = 1
    s = timing_stats([10.0, 2.0, 5.0, 1.0, 3.0])
    assert (s.n, s.median, s.q1, s.q3, s.min, s.max) == (5, 3.0, 2.0, 5.0, 1.0, 10.0)
    assert s.iqr == 3.0 and s.rel_iqr == 1.0
    assert s.mean == pytest.approx(4.2)
    d = s.to_dict()
    assert d["median_s"] == 3.0 and d["iqr_s"] == 3.0 and d["n"] == 5


def test_timing_stats_even_count() -> None:
    # sorted [0.1, 0.2, 0.4, 0.8]: median h=1.5 -> 0.3; q1 h=0.75 -> 0.1 + 0.75*0.1 = 0.175;
    # q3 h=2.25 -> 0.4 + 0.25*0.4 = 0.5; IQR 0.325
    s = timing_stats([0.8, 0.1, 0.4, 0.2])
    assert s.median == pytest.approx(0.3)
    assert s.q1 == pytest.approx(0.175)
    assert s.q3 == pytest.approx(0.5)
    assert s.iqr == pytest.approx(0.325)


@pytest.mark.parametrize("bad", [[], [1.0, -0.1], [math.nan], [math.inf]])
def test_timing_stats_rejects_bad_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        timing_stats(bad)


def test_ratio_and_median_error() -> None:
    # |2/4 - 1| = 0.5; |3/2 - 1| = 0.5; |1/1 - 1| = 0; |5/4 - 1| = 0.25
    assert ratio_error(2.0, 4.0) == 0.5
    assert ratio_error(3.0, 2.0) == 0.5
    assert ratio_error(1.0, 0.0) == math.inf
    # errors [0.5, 0.5, 0, 0.25] sorted [0, 0.25, 0.5, 0.5]: median (0.25+0.5)/2 = 0.375
    assert median_error([(2, 4), (3, 2), (1, 1), (5, 4)]) == pytest.approx(0.375)
    assert median_error([]) is None


def test_memory_use_delta() -> None:
    assert MemoryUse("m", 1000, 400).delta_bytes == 600
    assert MemoryUse("m", 300, 400).delta_bytes == 0  # never negative
    assert MemoryUse("m", None, 400).delta_bytes is None


def _spec() -> HardwareSpec:
    return HardwareSpec(
        name="toy",
        display_name="toy",
        vendor="-",
        kind="cpu",
        bandwidth=100.0,
        compute={"float32": 1000.0},
        kernel_overhead=0.5,
        verified=True,
    )


def test_summarize_joins_report_and_roofline(handmade) -> None:  # noqa: ANN001
    # The hand-built report (tests/conftest.py): 4 forward ops, all float32
    #   body      aten.add    flops 100, bytes 800+400 = 1200
    #   body.0    aten.addmm  flops 200 (MACs > 0: matrix), bytes 480+40 = 520
    #   body.1    aten.relu   flops 10, bytes 40+40 = 80
    #   head      aten.addmm  flops 20, bytes 84+4 = 88
    # totals: flops 330, MACs 110, bytes 1888, 4 kernels; input (4, 10): batch 4.
    # Toy chip: 1000 FLOP/s (compute.float32, also used for vector work), 100 B/s, 0.5 s per op.
    #   add   max(0.1, 12.0) + 0.5 = 12.5
    #   addmm max(0.2, 5.2) + 0.5 = 5.7
    #   relu  max(0.01, 0.8) + 0.5 = 1.3
    #   head  max(0.02, 0.88) + 0.5 = 1.38        total 20.88 s; body 19.5 s
    # Measured [1, 2, 3, 4] s: median 2.5 s.
    roof = roofline(handmade, _spec(), phase="forward")
    timings = Timings(
        device="cpu",
        device_name="toy cpu",
        timer="perf_counter",
        samples=[4.0, 1.0, 3.0, 2.0],
        warmup=1,
        memory=MemoryUse("test", 900, 500),
        hooked_samples=[3.0, 3.0, 3.0],
        module_samples={"": [3.0, 3.0, 3.0], "body": [2.0, 2.5, 3.0], "head": [0.5, 0.5, 0.5]},
    )
    r = summarize(timings, handmade, roof)
    assert (r.flops, r.macs, r.bytes_moved, r.kernels, r.batch) == (330, 110, 1888, 4, 4)
    assert r.latency.median == 2.5 and r.repeats == 4
    assert r.throughput == pytest.approx(4 / 2.5)  # 1.6 samples/s
    assert r.achieved_flops == pytest.approx(330 / 2.5)  # 132 FLOP/s
    assert r.achieved_bandwidth == pytest.approx(1888 / 2.5)  # 755.2 B/s
    assert r.compute_utilization == pytest.approx(132 / 1000)
    assert r.bandwidth_utilization == pytest.approx(755.2 / 100)
    p = r.prediction
    assert p is not None
    assert p.latency_s == pytest.approx(20.88)
    assert p.overhead_s == pytest.approx(4 * 0.5)
    assert p.flops_only_s == pytest.approx(0.33)  # 330 / 1000
    assert r.ratio == pytest.approx(20.88 / 2.5)
    assert r.flops_only_ratio == pytest.approx(0.33 / 2.5)
    assert r.hook_overhead == pytest.approx(3.0 / 2.5)
    mods = {m.name: m for m in r.modules}
    assert set(mods) == {"", "body", "head"}  # only modules that were timed
    assert mods["body"].measured.median == 2.5
    assert mods["body"].predicted_s == pytest.approx(19.5)
    assert mods["body"].ratio == pytest.approx(19.5 / 2.5)
    assert mods["head"].predicted_s == pytest.approx(1.38)
    assert mods["body"].flops == 310  # 100 + 200 + 10
    d = r.to_dict()
    assert d["schema"] == "modelmeter.measure/1"
    assert d["memory"]["delta_bytes"] == 400
    assert d["per_module"]["modules"][0]["name"] == ""
    assert d["utilization"]["bandwidth_bytes_per_s"] == 100.0


def test_summarize_without_hardware(handmade) -> None:  # noqa: ANN001
    timings = Timings("cpu", "x", "t", [0.5], 0, MemoryUse("none"))
    r = summarize(timings, handmade, batch=7)
    assert r.prediction is None and r.ratio is None and r.compute_utilization is None
    assert r.batch == 7 and r.throughput == pytest.approx(14.0)
    assert r.hooked is None and r.modules == []
    assert r.to_dict()["per_module"] is None


def test_page_fault_note_from_a_tenth_of_the_traffic(handmade) -> None:  # noqa: ANN001
    # the hand-built report moves 1888 bytes per call (see above)
    def run(faults: float | None, page: int = 64) -> list[str]:
        timings = Timings("cpu", "x", "t", [0.5], 0, MemoryUse("none"), page_faults=faults)
        timings.page_size = page
        r = summarize(timings, handmade)
        assert r.page_faults == faults
        if faults is not None:
            assert r.fresh_page_bytes == faults * page
            assert r.to_dict()["fresh_page_bytes_per_call"] == faults * page
        return [n for n in r.notes if "page faults" in n]

    assert run(None) == [] and run(0) == []
    # 2 faults x 64 B = 128 B < 0.1 x 1888 = 188.8 B: no note
    assert run(2) == []
    # 3 faults x 64 B = 192 B >= 188.8 B: 192 / 1888 = 10% of the traffic
    (note,) = run(3)
    assert note.startswith("3 page faults per call") and "10% of the bytes" in note
    assert "MALLOC_TRIM_THRESHOLD_" in note


def test_calibration_to_spec_round_trips(tmp_path) -> None:  # noqa: ANN001
    cal = Calibration(
        device="cuda:0",
        device_name="Toy GPU",
        torch_version="torch 9.9",
        vendor="Toy",
        kind="gpu",
        matmul={"float32": 5.0e13, "bfloat16": 7.5e14},
        vector={"float32": 2.0e13},
        bandwidth=3.0e12,
        kernel_overhead=6.5e-6,
        launch_overhead=2.0e-6,
        launch_classes={"elementwise": 1.5e-6, "conv": 9.0e-6},
        overheads={"float32": 6.5e-6, "bfloat16": 9.0e-6},
        dtype_kernels={"float32": {"conv": (0.8, 0.6)}, "bfloat16": {"conv": (0.4, 0.9)}},
        capacity=8.0e10,
    )
    spec = cal.to_spec("toy-gpu")
    assert spec.verified is False
    assert spec.source == "measured by modelmeter calibrate on Toy GPU (torch 9.9)"
    assert (spec.efficiency_compute, spec.efficiency_memory) == (1.0, 1.0)
    path = tmp_path / "toy.toml"
    path.write_text(dump_toml(spec), encoding="utf-8")
    back = load_file(path)
    assert back.name == "toy-gpu" and back.kind == "gpu"
    assert back.compute["bfloat16"] == pytest.approx(7.5e14)
    assert back.vector["float32"] == pytest.approx(2.0e13)
    assert back.bandwidth == pytest.approx(3.0e12)
    assert back.kernel_overhead == pytest.approx(6.5e-6)
    assert back.capacity == pytest.approx(8.0e10)
    assert back.overhead_for("bfloat16") == pytest.approx(9.0e-6)
    assert back.kernel_factors("conv", "bfloat16") == (0.4, 0.9)
    assert back.kernel_factors("conv", "float32") == (0.8, 0.6)
    # the launch times per class, and elementwise's as the launch of every other class
    assert back.launch_for("conv") == pytest.approx(9.0e-6)
    assert back.launch_for("norm") == back.launch_for("elementwise") == pytest.approx(1.5e-6)
