"""Roofline per op, per module and for the model, checked against the formulas by hand:

compute_s = FLOPs / (peak x eff.compute), memory_s = bytes / (bandwidth x eff.memory),
latency = max(compute, memory) + overhead, bound = overhead if overhead > max(...)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from render_checks import check_rows_add_up

import modelmeter
from modelmeter.analysis.roofline import main_dtype, roofline
from modelmeter.errors import ReportFormatError
from modelmeter.hardware import HardwareSpec, HardwareSpecError, load_spec
from modelmeter.render import render_report as render
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

H100 = load_spec("h100-sxm").ideal()  # the datasheet roofline (attainable: test_runtime.py)


def one_op_report(rec: OpRecord, shape: tuple[int, ...] = (8, 4)) -> Report:
    root = ModuleNode("", "Fn", calls=1, ops=[rec])
    return Report("fn", "torch", "exact", "meta", [InputSpec(shape, rec.dtype)], root)


def toy(**kw: object) -> HardwareSpec:
    """Round numbers: 100 TFLOP/s bf16 matrix, 10 TFLOP/s fp32 vector, 1 TB/s, 5 us."""
    base: dict[str, object] = dict(
        name="toy",
        display_name="Toy",
        vendor="-",
        kind="gpu",
        bandwidth=1e12,
        compute={"bfloat16": 100e12},
        vector={"float32": 10e12},
        kernel_overhead=5e-6,
        verified=True,
    )
    base.update(kw)
    return HardwareSpec(**base)  # type: ignore[arg-type]


# ---- the three regimes, traced from real ops -------------------------------------------------


def test_big_matmul_is_compute_bound_on_h100() -> None:
    r = modelmeter.analyze(lambda a, b: a @ b, ("4096x4096:bf16", "4096x4096:bf16"))
    roof = roofline(r, H100)
    (t,) = roof.ops
    # exact convention: (2k - 1)·m·n = 8191 * 4096 * 4096 = 137,422,176,256 FLOPs
    assert t.flops == 137_422_176_256
    # bytes: read 2 x 4096*4096*2 B, write 4096*4096*2 B = 100,663,296
    assert t.bytes == 100_663_296
    # 137,422,176,256 / 989.5e12 = 1.388804e-4 s on the bf16 tensor cores
    assert t.compute_s == pytest.approx(137_422_176_256 / 989.5e12)
    assert t.compute_s == pytest.approx(1.388804e-4, rel=1e-6)
    # 100,663,296 / 3.35e12 = 3.004874e-5 s
    assert t.memory_s == pytest.approx(3.004874e-5, rel=1e-6)
    assert t.overhead_s == 4e-6
    # 1.388804e-4 + 4e-6 = 1.428804e-4 s
    assert t.latency_s == pytest.approx(1.428804e-4, rel=1e-6)
    assert t.bound == "compute" and t.unit == "matrix" and t.peak_key == "compute.bfloat16"
    # intensity 137,422,176,256 / 100,663,296 = 1365.17 FLOP/B, right of the ridge (295.37)
    assert t.arithmetic_intensity == pytest.approx(1365.1667, rel=1e-6)
    assert roof.ridge_point == pytest.approx(989.5e12 / 3.35e12)  # 295.37 FLOP/B
    # utilization = FLOPs / latency / peak = 1.388804e-4 / 1.428804e-4 = 0.97200
    assert roof.utilization == pytest.approx(0.972005, rel=1e-5)


def test_elementwise_add_is_memory_bound_on_h100() -> None:
    r = modelmeter.analyze(lambda a, b: a + b, ("4096x4096", "4096x4096"))
    (t,) = roofline(r, H100).ops
    # 16,777,216 adds on the fp32 vector units (not the tensor cores): / 67e12 = 2.504e-7 s
    assert t.unit == "vector" and t.peak_key == "vector.float32"
    assert t.compute_s == pytest.approx(16_777_216 / 67e12)
    # bytes: 3 x 16,777,216 x 4 = 201,326,592 -> / 3.35e12 = 6.009749e-5 s
    assert t.memory_s == pytest.approx(6.009749e-5, rel=1e-6)
    # 6.009749e-5 + 4e-6 = 6.409749e-5 s
    assert t.latency_s == pytest.approx(6.409749e-5, rel=1e-6)
    assert t.bound == "memory"
    assert t.arithmetic_intensity == pytest.approx(1 / 12)  # 1 FLOP per 12 bytes


def test_tiny_op_is_overhead_bound() -> None:
    r = modelmeter.analyze(lambda a, b: a + b, ("10", "10"))
    (t,) = roofline(r, H100).ops
    # 120 bytes / 3.35e12 = 3.58e-11 s and 10 / 67e12 = 1.5e-13 s, both far below 4 us
    assert t.bound == "overhead"
    assert t.latency_s == pytest.approx(4e-6 + 120 / 3.35e12)


# ---- the formula on hand-built ops -----------------------------------------------------------


def test_mac_op_uses_matrix_peak_and_efficiency() -> None:
    rec = OpRecord(
        "aten.mm", Cost(macs=1, flops=2_000_000_000, bytes_read=1_000_000), dtype="bfloat16"
    )
    spec = toy().with_efficiency(compute=0.5, memory=0.8)
    (t,) = roofline(one_op_report(rec), spec).ops
    # 2e9 / (100e12 x 0.5) = 4e-5 s; 1e6 / (1e12 x 0.8) = 1.25e-6 s; + 5e-6 = 4.5e-5 s
    assert t.compute_s == pytest.approx(4e-5)
    assert t.memory_s == pytest.approx(1.25e-6)
    assert t.latency_s == pytest.approx(4.5e-5)
    assert t.bound == "compute"


def test_non_mac_op_uses_vector_peak() -> None:
    rec = OpRecord("aten.exp", Cost(flops=1_000_000_000, bytes_read=0), dtype="float32")
    (t,) = roofline(one_op_report(rec), toy()).ops
    # 1e9 / 10e12 = 1e-4 s on the vector units, not 1e9 / 100e12 on the matrix units
    assert t.compute_s == pytest.approx(1e-4)
    assert t.unit == "vector"


def test_depthwise_conv_uses_the_vector_peak() -> None:
    # a MAC op whose formula says "vector" (a depthwise conv) runs at the vector peak:
    # 1e9 FLOPs / 10e12 = 1e-4 s, not 1e9 / 100e12 = 1e-5 s on the matrix units
    rec = OpRecord(
        "aten.convolution", Cost(macs=5 * 10**8, flops=10**9), dtype="float32", unit="vector"
    )
    (t,) = roofline(one_op_report(rec), toy()).ops
    assert t.unit == "vector" and t.peak_key == "vector.float32"
    assert t.compute_s == pytest.approx(1e-4)


def test_depthwise_conv_traced_on_h100_is_bounded_by_the_vector_peak() -> None:
    # MobileNet-like depthwise 3x3 at batch 64, bf16: 64x240x28x28, groups 240, pad 1.
    # MACs = 64*240*28*28 * 9 = 108,380,160; exact FLOPs with bias = 2*MACs = 216,760,320.
    r = modelmeter.analyze(
        torch.nn.Conv2d(240, 240, 3, padding=1, groups=240), "64x240x28x28", dtype="bf16"
    )
    (t,) = roofline(r, H100).ops
    assert t.flops == 216_760_320
    # on the non-Tensor bf16 peak, 133.8e12: 216,760,320 / 133.8e12 = 1.62003e-6 s, not on
    # the tensor cores (216,760,320 / 989.5e12 = 2.19e-7 s)
    assert t.unit == "vector" and t.peak_key == "vector.bfloat16"
    assert t.compute_s == pytest.approx(1.62003e-6, rel=1e-5)
    # bytes: in and out 64*240*28*28*2 B = 24,084,480 each, weight 240*9*2 = 4,320, bias 480
    # = 48,173,760 B / 3.35e12 = 1.438023e-5 s: memory-bound even on the vector units
    assert t.bytes == 48_173_760
    assert t.bound == "memory" and t.memory_s == pytest.approx(1.438023e-5, rel=1e-6)


def test_kernel_class_efficiency_scales_both_ceilings() -> None:
    # toy chip with [efficiency.kernels] pool = 0.25: a max pool of 1e9 FLOPs and 4e6 bytes
    #   compute 1e9 / (10e12 x 0.25) = 4e-4 s ; memory 4e6 / (1e12 x 0.25) = 1.6e-5 s
    #   latency 4e-4 + 5e-6 = 4.05e-4 s
    spec = toy(kernel_efficiency={"pool": 0.25})
    pool = OpRecord(
        "aten.max_pool2d_with_indices", Cost(flops=10**9, bytes_read=4_000_000), dtype="float32"
    )
    (t,) = roofline(one_op_report(pool), spec).ops
    assert t.kernel_class == "pool" and t.kernel_efficiency == 0.25
    assert t.compute_s == pytest.approx(4e-4) and t.memory_s == pytest.approx(1.6e-5)
    assert t.latency_s == pytest.approx(4.05e-4)
    # an add (family elementwise) is not scaled: 1e9 / 10e12 = 1e-4 s
    add = OpRecord("aten.add", Cost(flops=10**9), dtype="float32")
    (t,) = roofline(one_op_report(add), spec).ops
    assert t.kernel_class == "elementwise" and t.compute_s == pytest.approx(1e-4)



def test_kernel_class_efficiency_per_ceiling() -> None:
    # conv = { compute = 0.5, memory = 0.2 } on the toy chip (100 TFLOP/s bf16, 1 TB/s):
    # a bf16 convolution of 1e10 FLOPs (1e9 MACs) moving 1e7 bytes:
    #   compute 1e10 / (100e12 x 0.5) = 2e-4 s ; memory 1e7 / (1e12 x 0.2) = 5e-5 s
    spec = toy(kernel_efficiency={"conv": 0.5}, kernel_memory={"conv": 0.2})
    conv = OpRecord(
        "aten.convolution", Cost(macs=10**9, flops=10**10, bytes_read=10**7), dtype="bfloat16"
    )
    (t,) = roofline(one_op_report(conv), spec).ops
    assert (t.kernel_efficiency, t.kernel_memory_efficiency) == (0.5, 0.2)
    assert t.compute_s == pytest.approx(2e-4) and t.memory_s == pytest.approx(5e-5)
    assert t.bound == "compute"
    eff = roofline(one_op_report(conv), spec).to_dict()["efficiency"]["kernels"]
    assert eff == {"conv": {"compute": 0.5, "memory": 0.2}}

def test_kernel_classes_of_traced_ops() -> None:
    from modelmeter.analysis.kernels import record_class as kernel_class
    from modelmeter.registry import family_of

    model = torch.nn.Sequential(
        torch.nn.Conv2d(8, 8, 3, groups=8),  # depthwise
        torch.nn.Conv2d(8, 4, 1),  # dense
        torch.nn.BatchNorm2d(4),
        torch.nn.MaxPool2d(2),
    ).eval()
    r = modelmeter.analyze(model, "1x8x8x8")
    classes = [kernel_class(rec) for n in r.modules() for rec in n.ops]
    assert classes == ["depthwise", "conv", "norm", "pool"]
    assert family_of("onnx.MaxPool") == "pool" and family_of("torchvision.nms") == "detection"
    assert family_of("aten.no_such_op") is None


def test_one_kernel_class_rule_for_records_and_profiled_shapes() -> None:
    from modelmeter.analysis.kernels import kernel_class

    # a depthwise convolution: 8 groups of one input channel each (weight 8x1x3x3)
    assert kernel_class("conv", [[1, 8, 5, 5], [8, 1, 3, 3]]) == "depthwise"
    assert kernel_class("conv", [[1, 8, 5, 5]], groups=8) == "depthwise"
    # a one-channel input: a plain convolution; 4 channels per group: grouped
    assert kernel_class("conv", [[1, 1, 5, 5], [8, 1, 3, 3]]) == "conv"
    assert kernel_class("conv", [[1, 8, 5, 5], [8, 4, 3, 3]]) == "grouped"
    assert kernel_class("conv", [[1, 8, 5, 5]], groups=2) == "grouped"
    # a record: its formula's unit is the verdict; no formula at all: other
    assert kernel_class("conv", unit="vector") == "depthwise"
    assert kernel_class("conv", [[1, 8, 5, 5], [8, 1, 3, 3]], unit="matrix") == "conv"
    assert kernel_class("pool", [[1, 8, 5, 5], [8, 1, 3, 3]]) == "pool"
    assert kernel_class(None) == "other"


def test_overhead_wins_only_when_it_exceeds_both() -> None:
    # memory 4e-6 s (4e6 B at 1 TB/s) < 5 us overhead -> overhead; 6e-6 s -> memory
    small = OpRecord("aten.add", Cost(flops=1, bytes_read=4_000_000), dtype="float32")
    big = OpRecord("aten.add", Cost(flops=1, bytes_read=6_000_000), dtype="float32")
    assert roofline(one_op_report(small), toy()).ops[0].bound == "overhead"
    t = roofline(one_op_report(big), toy()).ops[0]
    assert t.bound == "memory" and t.latency_s == pytest.approx(6e-6 + 5e-6)


def test_modules_roll_up_and_rows_add_up(handmade: Report) -> None:
    # kernels in series (overlap=False): each op pays the whole overhead
    spec = toy(
        compute={"float32": 1e12}, vector={"float32": 1e11}, kernel_overhead=1e-6, overlap=False
    )
    roof = roofline(handmade, spec)
    # ops (float32): body.add flops 100 bytes 1200; body.0 addmm flops 200 bytes 520;
    # body.1 relu flops 10 bytes 80; head addmm flops 20 bytes 88. With 1 TB/s every op's
    # memory time is bytes x 1e-12 s, far below 1 us: every op is overhead-bound.
    assert [t.bound for t in roof.ops] == ["overhead"] * 4
    lat = {t.module: t.latency_s for t in roof.ops}
    # body.0: max(200 / 1e12, 520 / 1e12) + 1e-6 = 1.00052e-6 s
    assert lat["body.0"] == pytest.approx(1e-6 + 520e-12)
    body = roof.modules["body"]
    assert body.latency_s == pytest.approx(lat["body"] + lat["body.0"] + lat["body.1"])
    assert body.kernels == 3 and body.overhead_bound == 3 and body.flops == 310
    assert roof.total.latency_s == pytest.approx(sum(lat.values()))
    assert roof.modules[""] is roof.total
    for name, node in ((n.name, n) for n in handmade.modules()):
        kids = sum(roof.modules[c.name].latency_s for c in node.children)
        assert roof.modules[name].latency_s == pytest.approx(roof.own[name].latency_s + kids)
    # the model: 100 + 200 + 10 + 20 = 330 FLOPs over the summed latency
    assert roof.total.flops == 330
    assert roof.utilization == pytest.approx(330 / roof.latency_s / 1e12)
    assert list(roof.modules) == [n.name for n in handmade.modules()]  # tree order


def _adds(*busy_us: float) -> Report:
    """One module running float32 adds whose memory time at 1 TB/s is ``busy_us`` each
    (bytes = busy x 1e6; 1 FLOP each, negligible at 10 TFLOP/s)."""
    ops = [OpRecord("aten.add", Cost(flops=1, bytes_read=int(b * 1e6))) for b in busy_us]
    return Report("adds", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=ops))


def test_overlapped_launches_queue_behind_a_long_kernel() -> None:
    # o = 2 us; busy 10, 1, 1, 1 us. Issued at 2, 4, 6, 8 us:
    # op 1 waits 2, ends 12; ops 2-4 are issued before the device is free: no wait, end 13,
    # 14, 15. Latency 15 us (in series: 13 + 4 x 2 = 21 us).
    roof = roofline(_adds(10, 1, 1, 1), toy(kernel_overhead=2e-6))
    assert [t.overhead_s for t in roof.ops] == pytest.approx([2e-6, 0, 0, 0])
    assert roof.latency_s == pytest.approx(15e-6)
    # a 1 us kernel is overhead-bound alone, but its launch is hidden here
    assert [t.bound for t in roof.ops] == ["memory"] * 4
    serial = roofline(_adds(10, 1, 1, 1), toy(kernel_overhead=2e-6, overlap=False))
    assert serial.latency_s == pytest.approx(21e-6)
    assert [t.bound for t in serial.ops] == ["memory"] + ["overhead"] * 3


def test_overlapped_launches_starve_a_fast_device() -> None:
    # o = 2 us; busy 1.5, 1.5, 1.5, 10 us. Op 1 issued at 2, ends 3.5; op 2 issued at 4
    # (waits 0.5), ends 5.5; op 3 issued at 6 (waits 0.5), ends 7.5; op 4 issued at 8 (waits
    # 0.5), ends 18. 18 = 4 x 2 + 10: the host's launches set the pace until the long kernel.
    roof = roofline(_adds(1.5, 1.5, 1.5, 10), toy(kernel_overhead=2e-6))
    assert [t.overhead_s for t in roof.ops] == pytest.approx([2e-6, 0.5e-6, 0.5e-6, 0.5e-6])
    assert [t.latency_s for t in roof.ops] == pytest.approx([3.5e-6, 2e-6, 2e-6, 10.5e-6])
    assert roof.latency_s == pytest.approx(18e-6) == sum(t.latency_s for t in roof.ops)
    assert roof.total.overhead_s == pytest.approx(3.5e-6)
    assert [t.bound for t in roof.ops] == ["overhead", "memory", "memory", "memory"]
    assert roof.to_dict()["launches_overlap"] is True


def _typed_adds(*ops: tuple[float, str]) -> Report:
    """Adds of ``busy_us`` memory time at 1 TB/s each, in the given dtypes."""
    recs = [
        OpRecord("aten.add", Cost(flops=1, bytes_read=int(b * 1e6)), dtype=dt) for b, dt in ops
    ]
    return Report("adds", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=recs))


def test_overhead_per_dtype_in_series_and_in_the_queue() -> None:
    # [overhead] kernel = 2 us, [overhead.dtypes] bfloat16 = 20 us
    spec = toy(kernel_overhead=2e-6, dtype_overhead={"bfloat16": 20e-6})
    assert (spec.overhead_for("float32"), spec.overhead_for("bfloat16")) == (2e-6, 20e-6)
    report = _typed_adds((10, "float32"), (1, "float32"), (1, "bfloat16"))
    # in series: busy 10 + 1 + 1 = 12 us, overheads 2 + 2 + 20 = 24 us -> 36 us
    serial = roofline(report, replace(spec, overlap=False))
    assert [t.overhead_s for t in serial.ops] == pytest.approx([2e-6, 2e-6, 20e-6])
    assert serial.latency_s == pytest.approx(36e-6)
    # queued: issued at 2, 2+2 = 4 and 4+20 = 24 us. Op 1 waits 2, ends 12; op 2 (issued at
    # 4) starts at 12, ends 13; op 3 is issued at 24: waits 11, ends 25 us.
    roof = roofline(report, spec)
    assert [t.overhead_s for t in roof.ops] == pytest.approx([2e-6, 0, 11e-6])
    assert roof.latency_s == pytest.approx(25e-6)
    # the JSON gives the overhead of the main dtype (float32 here: no MAC op, most FLOPs tie
    # broken by name -> float32 has 2 FLOPs against 1)
    assert roof.dtype == "float32" and roof.to_dict()["kernel_overhead_s"] == 2e-6


def test_kernel_factors_per_dtype_over_the_general_table() -> None:
    # conv in bfloat16 at 0.5 compute / 0.25 memory; every other dtype at the general 0.8
    spec = toy(
        kernel_efficiency={"conv": 0.8, "norm": 0.5},
        dtype_kernels={"bfloat16": {"conv": (0.5, 0.25)}},
    )
    assert spec.kernel_factors("conv", "bfloat16") == (0.5, 0.25)
    assert spec.kernel_factors("conv", "float32") == (0.8, 0.8)
    assert spec.kernel_factors("norm", "bfloat16") == (0.5, 0.5)  # not in its table: general
    assert spec.kernel_factors("conv") == (0.8, 0.8)
    # a bf16 convolution with 2e9 FLOPs and 1e6 bytes: compute 2e9 / (100e12 x 0.5) = 40 us,
    # memory 1e6 / (1e12 x 0.25) = 4 us
    rec = OpRecord("aten.convolution", Cost(macs=10**9, flops=2 * 10**9, bytes_read=10**6),
                   dtype="bfloat16")
    roof = roofline(one_op_report(rec), toy(**{**_fields(spec), "kernel_overhead": 0.0}))
    (t,) = roof.ops
    assert (t.kernel_efficiency, t.kernel_memory_efficiency) == (0.5, 0.25)
    assert t.compute_s == pytest.approx(40e-6) and t.memory_s == pytest.approx(4e-6)
    assert roof.to_dict()["efficiency"]["kernels"]["conv"] == {"compute": 0.5, "memory": 0.25}
    assert spec.to_dict()["efficiency"]["dtypes"] == {
        "bfloat16": {"conv": {"compute": 0.5, "memory": 0.25}}
    }


def _fields(spec: HardwareSpec) -> dict[str, object]:
    return {f: getattr(spec, f) for f in ("kernel_efficiency", "dtype_kernels")}


def test_roofline_does_not_change_the_report(handmade: Report) -> None:
    before = json.dumps(handmade.to_dict(), sort_keys=True)
    roofline(handmade, H100)
    assert json.dumps(handmade.to_dict(), sort_keys=True) == before


def test_phase_filter() -> None:
    fwd = OpRecord("aten.mm", Cost(macs=1, flops=100), dtype="bfloat16")
    bwd = OpRecord("aten.mm", Cost(macs=1, flops=300), phase="backward", dtype="bfloat16")
    root = ModuleNode("", "Fn", ops=[fwd, bwd])
    r = Report("fn", "torch", "exact", "meta", [], root)
    assert roofline(r, toy()).total.flops == 400
    assert roofline(r, toy(), phase="backward").total.flops == 300
    assert roofline(r, toy()).batch is None  # no inputs: no throughput
    assert roofline(r, toy()).throughput is None


def test_throughput_at_the_batch() -> None:
    rec = OpRecord("aten.mm", Cost(macs=1, flops=5_000_000_000), dtype="bfloat16")
    roof = roofline(one_op_report(rec, shape=(64, 3)), toy(kernel_overhead=0.0))
    # 5e9 / 100e12 = 5e-5 s for a batch of 64: 64 / 5e-5 = 1,280,000 samples/s
    assert roof.throughput == pytest.approx(1_280_000)
    assert roof.utilization == pytest.approx(1.0)


def test_main_dtype_is_the_mac_dtype_with_most_flops() -> None:
    ops = [
        OpRecord("aten.mm", Cost(macs=1, flops=10), dtype="float32"),
        OpRecord("aten.mm", Cost(macs=1, flops=20), dtype="bfloat16"),
        OpRecord("aten.add", Cost(flops=1000), dtype="float32"),  # not a MAC op
    ]
    r = Report("fn", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=ops))
    assert main_dtype(r) == "bfloat16"
    empty = Report("fn", "torch", "exact", "meta", [], ModuleNode("", "Fn"))
    assert main_dtype(empty) == "float32"
    assert roofline(empty, toy()).total.bound == "none"


def test_quantised_npu_says_so() -> None:
    rec = OpRecord("aten.mm", Cost(macs=1, flops=1_700_000_000), dtype="float32")
    roof = roofline(one_op_report(rec), load_spec("hi3519av100"))
    # an int8-only NPU: float32 MACs at the 1.7 TOPS int8 peak -> 1.7e9 / 1.7e12 = 1 ms
    assert roof.ops[0].compute_s == pytest.approx(1e-3)
    assert "assumed quantised to int8" in roof.notes
    assert any("unverified" in n for n in roof.notes)


def test_bad_spec_values_raise_one_clear_error() -> None:
    rec = OpRecord("aten.mm", Cost(macs=1, flops=1), dtype="float32")
    with pytest.raises(HardwareSpecError, match="bandwidth"):
        roofline(one_op_report(rec), toy(bandwidth=0.0))
    with pytest.raises(HardwareSpecError, match="compute"):
        roofline(one_op_report(rec), toy(compute={}))


# ---- renderers -------------------------------------------------------------------------------


def test_json_adds_hardware_and_roofline_top_level_and_per_module(handmade: Report) -> None:
    roof = roofline(handmade, H100)
    plain = json.loads(render(handmade, "json"))
    d = json.loads(render(handmade, "json", roofline=roof))
    assert "roofline" not in plain and "hardware" not in plain
    assert "roofline" not in handmade.to_dict()
    assert d["hardware"]["name"] == "h100-sxm" and d["hardware"]["memory"]["bandwidth"] == 3.35e12
    for key in ("latency_s", "compute_s", "memory_s", "overhead_s", "bound"):
        assert key in d["roofline"]
    assert d["roofline"]["utilization"] == pytest.approx(roof.utilization)
    assert d["roofline"]["arithmetic_intensity"] == pytest.approx(330 / 1888)  # FLOPs / bytes
    for m in d["modules"]:
        assert m["roofline"]["latency_s"] == pytest.approx(roof.modules[m["name"]].latency_s)
    # everything the plain report has is unchanged
    assert {k: v for k, v in d.items() if k not in ("hardware", "roofline", "modules")} == {
        k: v for k, v in plain.items() if k != "modules"
    }
    assert Report.from_dict(d).total() == handmade.total()


def test_table_csv_md_show_roofline(handmade_factory: Callable[[], Report]) -> None:
    report = handmade_factory()
    roof = roofline(report, load_spec("hi3519av100"))
    table = render(report, "table", roofline=roof)
    for text in ("Latency", "Bound", "% time", "ridge point", "predicted latency", "UNVERIFIED"):
        assert text in table
    assert "assumed quantised to int8" in table
    csv_text = render(report, "csv", roofline=roof)
    assert csv_text.splitlines()[0].endswith(
        "latency_s,compute_s,memory_s,overhead_s,bound,arithmetic_intensity,utilization,blocks"
    )  # blocks: the last column, how many identical modules a row sums
    md = render(report, "md", roofline=roof)
    assert "## Roofline" in md and "| Latency | Bound | % time |" in md
    # the existing row checks still hold on the plain renderers
    check_rows_add_up(report, None)


def test_table_rows_follow_the_roofline_columns(handmade: Report) -> None:
    from modelmeter.render.table import COLUMNS, table_cells, table_columns

    roof = roofline(handmade, H100)
    cols = table_columns(roof)
    assert "Output shape" not in cols and cols[-3:] == ("Latency", "Bound", "% time")
    assert table_columns() == COLUMNS
    cells = table_cells(handmade, None, roof)
    assert all(len(c) == len(cols) for c in cells)
    root = dict(zip(cols, cells[0]))
    assert root["% time"] == "100.0%" and root["Bound"] == roof.total.bound
    header = next(
        line for line in render(handmade, "table", roofline=roof).splitlines() if "Module" in line
    )
    assert [h.strip() for h in header.strip("│").split("│")] == list(cols)


def test_the_launch_queue_runs_in_execution_order() -> None:
    import torch
    from torch import nn

    import modelmeter

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(512, 512)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)  # the child runs first ...
            for _ in range(4):
                y = torch.relu(y)  # ... then the parent's own ops
            return y

    report = modelmeter.analyze(Net(), "64x512")
    # toy chip, float32 on the vector peak 10 TFLOP/s, 1 TB/s, o = 5 us:
    #   fc (addmm): 2*512*64*512 = 33,554,432 FLOPs / 10e12 = 3.3554 us (bytes 1.31 us)
    #   relu: 64*512*4 B read + written = 262,144 B / 1e12 = 0.262 us each
    # run order: fc issued at 5, ends 8.355; the relus, issued at 10, 15, 20, 25, each find
    # the device idle: the last ends at 25 + 0.262 = 25.262 us. In tree order (the parent's
    # own relus before its child) fc would come last: 20.262 -> 25 + 3.355 = 28.355 us.
    roof = roofline(report, toy(vector={"float32": 10e12}))
    assert [t.op for t in roof.ops] == ["aten.relu"] * 4 + ["aten.addmm"]  # rows: tree order
    assert roof.latency_s == pytest.approx(25.262144e-6, rel=1e-4)
    # a report read back from JSON keeps its run order (each op's "seq"): the same latency.
    # Before, a saved report lost it, so `diff` of a model against its own saved report
    # showed a latency change (ResNet-18 at 64x64 on l4: 1.4933 -> 1.5032 ms, +0.66%).
    doc = json.loads(json.dumps(report.to_dict()))
    again = Report.from_dict(doc)
    assert roofline(again, toy(vector={"float32": 10e12})).latency_s == roof.latency_s
    # a report saved without it (older files): the queue takes tree order
    for module in doc["modules"]:
        for op in module["ops"]:
            del op["seq"]
    older = Report.from_dict(doc)
    assert roofline(older, toy(vector={"float32": 10e12})).latency_s == pytest.approx(
        28.3554e-6, rel=1e-4
    )
    module = next(m for m in doc["modules"] if m["ops"])
    module["ops"][0]["seq"] = -2
    with pytest.raises(ReportFormatError, match="seq"):
        Report.from_dict(doc)


@pytest.mark.parametrize(
    "bad",
    [
        {"dtype_kernels": {"float32": {"conv": 0.5}}},  # a number, not (compute, memory)
        {"dtype_kernels": {"float32": {"conv": (0.0, 1.0)}}},
        {"kernel_efficiency": {"conv": 0.0}},
    ],
)
def test_a_python_spec_with_bad_kernel_tables_gives_one_error(bad: dict) -> None:
    rec = OpRecord("aten.mm", Cost(macs=1, flops=1), dtype="float32")
    with pytest.raises(HardwareSpecError, match="efficiency"):
        roofline(one_op_report(rec), toy(**bad))


def test_roofline_times_and_shares_are_labelled_so_they_cannot_contradict() -> None:
    # a tiny Linear(4, 2) on an H100: every kernel is overhead-bound, so memory-bound kernels
    # take 0.0% of the latency although the kernels' memory times still sum to more than 0
    from modelmeter.render.table import roofline_lines

    report = modelmeter.analyze(torch.nn.Linear(4, 2), "1x4")
    lines = dict(roofline_lines(roofline(report, load_spec("h100-sxm"))))
    assert "compute" not in lines["predicted latency"].split("kernels,")[0]
    assert lines["kernel times"].startswith("summed over kernels, compute ")
    assert "hidden under the larger" in lines["kernel times"]
    shares = lines["time by bound"]
    assert shares.endswith(" of the predicted latency")
    assert "memory-bound 0.0% (0 kernels)" in shares and "overhead-bound 100.0% (1 kernel)" in shares
