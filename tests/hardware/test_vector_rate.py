"""The attainable vector rate of the built-in GPUs (docs/hardware.md, "The vector rate"): an
estimate from the measured FP32 FMA rate, not the calibration's DRAM-bound elementwise floor,
so that compute-heavy elementwise kernels stay memory-bound; each figure derived by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
H100 = load_spec("h100-sxm")


def one_op(rec: OpRecord) -> Report:
    root = ModuleNode("", "Fn", calls=1, ops=[rec])
    return Report("fn", "torch", "exact", "meta", [InputSpec((1,), rec.dtype)], root)


def test_h100_vector_rate_is_half_the_measured_fp32_fma_rate() -> None:
    a = H100.attainable
    assert a is not None
    # the float32 matmul with TF32 off runs on the FP32 FMA units: 51.59T measured;
    # one-FLOP instructions at half of it: 51.59T / 2 = 25.795T, written 25.8T
    assert a.compute["float32"] / 2 == pytest.approx(25.8e12, rel=1e-3)
    # half-precision elementwise kernels compute in float32: the same rate for every dtype
    assert dict(a.vector) == {"float32": 25.8e12, "bfloat16": 25.8e12, "float16": 25.8e12}
    # above the calibration's DRAM-bound tanh-GELU (a floor), below the datasheet's 67T
    cal = tomllib.loads((REPO / "bench/results/h100-calibrated.toml").read_text())
    for dtype, floor in cal["vector"].items():
        assert float(floor[:-1]) * 1e12 < a.vector[dtype] < H100.vector[dtype], dtype


def test_an_8bit_adamw_update_is_memory_bound_on_h100() -> None:
    # bitsandbytes' 8-bit AdamW on n float32 parameters: 44 FLOPs per element (ops/bnb_optim),
    # reads grad 4 + param 4 + two uint8 states 2 = 10 B, writes param 4 + states 2 = 6 B
    n = 1 << 20
    rec = OpRecord("bitsandbytes.optimizer_update_8bit_blockwise",
                   Cost(flops=44 * n, bytes_read=10 * n, bytes_written=6 * n), dtype="float32")
    (t,) = roofline(one_op(rec), H100).ops
    # compute: 44 x 1,048,576 = 46,137,344 FLOPs / 25.8e12 = 1.7883 us
    # memory: 16 x 1,048,576 = 16,777,216 B / 3.004e12 B/s = 5.5850 us -> memory-bound
    assert t.compute_s == pytest.approx(1.7883e-6, rel=1e-4)
    assert t.memory_s == pytest.approx(5.5850e-6, rel=1e-4)
    assert t.memory_s > t.compute_s  # (its bound is overhead: 18 + 8 us of host and launch)
    # (at the DRAM-bound floor, 3.127e12: 46,137,344 / 3.127e12 = 14.754 us, compute-bound)
    assert 44 * n / 3.127e12 == pytest.approx(14.754e-6, rel=1e-4)


def test_a_3x3_depthwise_kernel_keeps_its_measured_flop_rate() -> None:
    # the calibration measured the 3x3 depthwise kernel's time against the floor: its FLOP
    # rate is fraction x floor, float32 0.561 x 3.127T = 1.7542T; the new compute side gives
    # the same rate: 0.06799 x 25.8T = 1.7541T (bfloat16 0.306 x 5.856T = 1.7919T, 0.06945 x
    # 25.8T = 1.7918T; float16 0.849 x 5.857T = 4.9726T, 0.1927 x 25.8T = 4.9717T)
    a = H100.attainable
    assert a is not None
    for dtype, rate in (("float32", 1.7542e12), ("bfloat16", 1.7919e12),
                        ("float16", 4.9726e12)):
        kc, _ = a.kernel_factors("depthwise", dtype)
        assert kc * a.vector[dtype] == pytest.approx(rate, rel=1e-3), dtype
    # the memory side stays the calibrated fraction
    assert a.kernel_factors("depthwise", "float32")[1] == 0.561


def test_carried_over_vector_rates_scale_with_the_fp32_peak() -> None:
    # A100 SXM 80GB: 19.5T x 25.8 / 67 = 7.5090T; T4: 8.1T x 25.8 / 67 = 3.1191T; every
    # dtype the H100's section gives at the float32 rate
    for name, value in (("a100-sxm-80gb", 7.509e12), ("t4", 3.119e12)):
        a = load_spec(name).attainable
        assert a is not None
        assert dict(a.vector) == {"float32": value, "bfloat16": value, "float16": value}, name
