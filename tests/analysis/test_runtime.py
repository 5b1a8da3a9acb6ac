"""Runtimes (eager, graphs, ort), the per-kernel launch time, and attainable vs ideal figures,
each checked against a hand derivation (docs/hardware.md, "Runtimes" and "Attainable
figures")."""

from __future__ import annotations

import pytest

from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpec, HardwareSpecError
from modelmeter.hardware.attainable import Attainable
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report


def spec(**kw: object) -> HardwareSpec:
    """Round numbers: 100 TFLOP/s bf16 matrix, 10 TFLOP/s fp32 vector, 1 TB/s, 5 us per op."""
    base: dict[str, object] = dict(
        name="toy", display_name="Toy", vendor="-", kind="cpu", bandwidth=1e12,
        compute={"bfloat16": 100e12}, vector={"float32": 10e12}, kernel_overhead=5e-6,
        verified=True,
    )  # fmt: skip
    base.update(kw)
    return HardwareSpec(**base)  # type: ignore[arg-type]


def adds(*busy_us: float) -> Report:
    """float32 adds whose memory time at 1 TB/s is ``busy_us`` each (1 FLOP each)."""
    ops = [OpRecord("aten.add", Cost(flops=1, bytes_read=int(b * 1e6))) for b in busy_us]
    return Report("adds", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=ops))


def matmul(flops: int) -> Report:
    rec = OpRecord("aten.mm", Cost(macs=flops // 2, flops=flops, bytes_read=1000), dtype="bfloat16")
    root = ModuleNode("", "Fn", calls=1, ops=[rec])
    return Report("mm", "torch", "exact", "meta", [InputSpec((8, 4), "bfloat16")], root)


# ---- eager vs graphs vs ort, launches in series (a CPU) --------------------------------------


def test_one_op_eager_pays_its_host_issue_time_graphs_do_not() -> None:
    # busy 10 us (10,000,000 B at 1 TB/s); eager: 10 + host 5 = 15 us; graphs: 10 + 0 = 10 us
    eager = roofline(adds(10), spec())
    graphs = roofline(adds(10), spec(), runtime="graphs")
    assert eager.latency_s == pytest.approx(15e-6)
    assert graphs.latency_s == pytest.approx(10e-6)
    (t,) = eager.ops
    assert (t.host_s, t.launch_s, t.overhead_s) == pytest.approx((5e-6, 0, 5e-6))
    assert graphs.ops[0].bound == "memory" and graphs.total.overhead_s == 0
    assert eager.to_dict()["runtime"] == "eager" and graphs.to_dict()["runtime"] == "graphs"
    assert graphs.to_dict()["kernel_overhead_s"] == 0.0
    assert any("graphs runtime" in n for n in graphs.notes)


def test_launch_time_is_paid_in_every_runtime() -> None:
    # launch 1 us on top: eager 10 + 5 + 1 = 16 us; graphs 10 + 1 = 11 us
    s = spec(launch_overhead=1e-6)
    assert roofline(adds(10), s).latency_s == pytest.approx(16e-6)
    g = roofline(adds(10), s, runtime="graphs")
    assert g.latency_s == pytest.approx(11e-6)
    (t,) = g.ops
    assert (t.host_s, t.launch_s, t.overhead_s) == pytest.approx((0, 1e-6, 1e-6))
    # a 0.5 us kernel under graphs: overhead 1 us > busy 0.5 us: launch-bound
    assert roofline(adds(0.5), s, runtime="graphs").ops[0].bound == "overhead"


def test_ort_uses_its_own_per_op_time_else_eagers() -> None:
    # [overhead.runtimes] ort = 2 us: 10 + 2 = 12 us; without it eager's 5 us: 15 us, noted
    assert roofline(adds(10), spec(runtime_overhead={"ort": 2e-6}), runtime="ort").latency_s == (
        pytest.approx(12e-6)
    )
    plain = roofline(adds(10), spec(), runtime="ort")
    assert plain.latency_s == pytest.approx(15e-6)
    assert any("no onnxruntime per-op figure" in n for n in plain.notes)
    # [overhead.runtimes] graphs: a replay's own per-kernel host cost (0.5 us): 10.5 us
    g = roofline(adds(10), spec(runtime_overhead={"graphs": 0.5e-6}), runtime="graphs")
    assert g.latency_s == pytest.approx(10.5e-6)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(HardwareSpecError, match="unknown runtime 'jit'"):
        roofline(adds(1), spec(), runtime="jit")


# ---- the GPU queue with a launch time --------------------------------------------------------


def test_queue_with_launch_time() -> None:
    # host 2 us per op, launch 1 us per kernel, busy 10, 1, 1, 1 us. Issued at 2, 4, 6, 8:
    # op 1 starts at 2, runs 1 + 10, ends 13; ops 2-4 are issued before the device is free
    # and run 1 + 1 each: end 15, 17, 19. Latency 19 us = 15 us (no launch) + 4 x 1 us.
    s = spec(kind="gpu", kernel_overhead=2e-6, launch_overhead=1e-6)
    roof = roofline(adds(10, 1, 1, 1), s)
    assert [t.host_s for t in roof.ops] == pytest.approx([2e-6, 0, 0, 0])
    assert [t.overhead_s for t in roof.ops] == pytest.approx([3e-6, 1e-6, 1e-6, 1e-6])
    assert roof.latency_s == pytest.approx(19e-6) == sum(t.latency_s for t in roof.ops)
    # graphs: nothing to wait for, every kernel 1 us + busy: 4 + 13 = 17 us
    assert roofline(adds(10, 1, 1, 1), s, runtime="graphs").latency_s == pytest.approx(17e-6)


def test_host_bound_queue_runs_at_the_host_rate() -> None:
    # host 20 us per op, kernels of 1 us (+1 us launch): issued at 20, 40, 60; each ends at
    # its issue time + 2 us: 22, 42, 62 us: 3 x 20 + 2. Graphs: 3 x 2 = 6 us.
    s = spec(kind="gpu", kernel_overhead=20e-6, launch_overhead=1e-6)
    eager = roofline(adds(1, 1, 1), s)
    assert eager.latency_s == pytest.approx(62e-6)
    assert eager.total.bound == "overhead"
    assert roofline(adds(1, 1, 1), s, runtime="graphs").latency_s == pytest.approx(6e-6)


# ---- attainable vs ideal -----------------------------------------------------------------


def measured(**kw: object) -> Attainable:
    base: dict[str, object] = dict(basis="measured", source="bench", bandwidth=0.8e12,
                                   compute={"bfloat16": 80e12}, kernel_overhead=20e-6)
    base.update(kw)
    return Attainable(**base)  # type: ignore[arg-type]


def test_attainable_figures_price_by_default_ideal_is_the_datasheet() -> None:
    # 1e9 FLOPs of bf16 matmul: attainable 1e9 / 80e12 = 12.5 us; ideal 1e9 / 100e12 = 10 us
    s = spec(attainable=measured())
    att = roofline(matmul(10**9), s)
    ideal = roofline(matmul(10**9), s, ideal=True)
    assert att.ops[0].compute_s == pytest.approx(12.5e-6)
    assert ideal.ops[0].compute_s == pytest.approx(10e-6)
    # host: attainable 20 us, datasheet 5 us (overheads are not efficiencies: ideal keeps 5)
    assert att.latency_s == pytest.approx(32.5e-6)
    assert ideal.latency_s == pytest.approx(15e-6)
    # utilization against the datasheet peak in both: 1e9 / 32.5e-6 / 100e12 = 0.3077
    assert att.peak == ideal.peak == 100e12
    assert att.utilization == pytest.approx(1e9 / 32.5e-6 / 100e12)
    # the ridge of the figures used: 80e12 / 0.8e12 = 100 FLOP/B (ideal 100e12 / 1e12 = 100)
    assert att.ridge_point == pytest.approx(100.0)
    assert att.figures == "attainable" and ideal.figures == "ideal"
    assert att.to_dict()["figures"] == "attainable"
    assert "measured: bench" in att.figures_source


def test_ideal_drops_every_efficiency() -> None:
    # a calibrated-style spec (no [attainable]) with a conv factor and efficiency 0.5:
    # ideal prices at 1.0 (1e9 / 100e12 = 10 us busy), the default at 0.5 (20 us)
    s = spec(efficiency_compute=0.5, kernel_efficiency={"matmul": 0.5})
    assert roofline(matmul(10**9), s).ops[0].compute_s == pytest.approx(40e-6)
    assert roofline(matmul(10**9), s, ideal=True).ops[0].compute_s == pytest.approx(10e-6)
    assert roofline(matmul(10**9), s).figures == "datasheet"


def test_estimated_figures_say_so() -> None:
    s = spec(attainable=measured(basis="estimated", uncertainty="+-30%"))
    notes = roofline(matmul(10**9), s).notes
    assert "attainable figures estimated, not measured on this chip (uncertainty +-30%)" in notes
    assert not any("estimated" in n for n in roofline(matmul(10**9), s, ideal=True).notes)


def test_attainable_overlay_keeps_what_it_does_not_give() -> None:
    # no vector figure in [attainable]: the datasheet's 10 TFLOP/s fp32 stays; bandwidth
    # 0.8 TB/s: a 10 us (10 MB) add takes 12.5 us + 20 us host
    s = spec(attainable=measured())
    used = s.attained()
    assert used.vector == {"float32": 10e12} and used.attainable is None
    assert roofline(adds(10), s).latency_s == pytest.approx(32.5e-6)
    # a measured kernel table replaces the datasheet's whole
    s2 = spec(kernel_efficiency={"pool": 0.5},
              attainable=measured(kernel_efficiency={"conv": 0.4}))
    assert s2.attained().kernel_factors("pool") == (1.0, 1.0)
    assert s2.attained().kernel_factors("conv") == (0.4, 0.4)
