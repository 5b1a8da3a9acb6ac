"""The source document's utilization: (ops / latency) / peak, MAC-based (2 x MACs) and
FLOP-based, hand-checked."""

from __future__ import annotations

import json

import pytest

import modelmeter
from modelmeter.analysis.utilization import utilization
from modelmeter.hardware import HardwareSpecError, load_spec, spec_from_peak
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

HI3519 = load_spec("hi3519av100")
# ResNet-50 at 224x224, batch 1: 4,089,184,256 MACs (torchvision lists 4.09 GMACs)
RESNET50_MACS = 4_089_184_256


def resnet_like() -> Report:
    conv = OpRecord(
        "aten.convolution",
        Cost(macs=RESNET50_MACS, flops=8_200_000_000, bytes_read=100_000_000),
        dtype="float32",
    )
    root = ModuleNode("", "ResNet", calls=1, ops=[conv])
    return Report(
        "resnet-like", "torch", "exact", "meta", [InputSpec((1, 3, 224, 224), "float32")], root
    )


def test_resnet_like_at_12ms_on_1_7_tops() -> None:
    u = utilization(resnet_like(), HI3519, 0.012)
    # 2 x 4,089,184,256 / 0.012 s = 681,530,709,333 OP/s
    assert u.mac_ops_per_s == pytest.approx(681_530_709_333.3, rel=1e-12)
    # 681.53 GOP/s / 1.7 TOP/s = 0.400900
    assert u.mac_utilization == pytest.approx(0.4009004, rel=1e-6)
    # 8.2e9 / 0.012 = 683.33 GFLOP/s; / 1.7e12 = 0.401961
    assert u.flop_utilization == pytest.approx(0.4019608, rel=1e-6)
    assert (u.peak, u.peak_key) == (1.7e12, "compute.int8")
    assert "assumed quantised to int8" in u.notes
    assert u.throughput == pytest.approx(1 / 0.012)  # batch 1: 83.3 images/s
    # the roofline's prediction: compute 8.2e9 / 1.7e12 = 4.8235 ms vs memory 1e8 / 10.7e9 =
    # 9.3458 ms -> memory-bound, 9.3458 ms + 10 us = 9.3558 ms
    assert u.predicted_latency_s == pytest.approx(1e8 / 10.7e9 + 1e-5)
    # attainable = 8.2e9 / 9.3558e-3 / 1.7e12 = 0.51556
    assert u.attainable_utilization == pytest.approx(0.515565, rel=1e-5)
    d = u.to_dict()
    assert d["mac_utilization"] == pytest.approx(0.4009004, rel=1e-6)
    json.dumps(d)


def test_quick_figures_from_the_command_line() -> None:
    # --peak 1.7T --bandwidth 25.6G: the same peak, so the same utilization
    u = utilization(resnet_like(), spec_from_peak(1.7e12, 25.6e9), 0.012)
    assert u.mac_utilization == pytest.approx(0.4009004, rel=1e-6)


def test_dtype_picks_the_peak() -> None:
    h100 = load_spec("h100-sxm")
    # float32 MACs without TF32: the 67 TFLOP/s vector peak;
    # 2 x 4,089,184,256 / 1e-3 s / 67e12 = 0.122065
    u = utilization(resnet_like(), h100, 1e-3)
    assert u.peak == 67e12
    assert u.mac_utilization == pytest.approx(2 * RESNET50_MACS / 1e-3 / 67e12)
    # with --tf32: 494.7 TFLOP/s -> 0.016532
    assert utilization(resnet_like(), h100, 1e-3, tf32=True).mac_utilization == pytest.approx(
        0.0165320, rel=1e-5
    )
    # asked for bf16: 989.5 TFLOP/s -> 0.0082652
    assert utilization(resnet_like(), h100, 1e-3, dtype="bfloat16").peak == 989.5e12


def test_real_resnet18_on_hi3519() -> None:
    report = modelmeter.analyze("torchvision:resnet18", "1x3x224x224")
    u = utilization(report, HI3519, 0.012)
    # ResNet-18: 1,814,073,344 MACs (torchvision: 1.81 GMACs);
    # 2 x 1,814,073,344 / 0.012 / 1.7e12 = 0.177850
    assert u.macs == 1_814_073_344
    assert u.mac_utilization == pytest.approx(0.1778503, rel=1e-6)


@pytest.mark.parametrize("latency", [0.0, -1.0, float("inf"), float("nan")])
def test_latency_must_be_positive(latency: float) -> None:
    with pytest.raises(HardwareSpecError, match="latency must be a positive"):
        utilization(resnet_like(), HI3519, latency)


def test_impossible_latency_is_flagged() -> None:
    from modelmeter.analysis.utilization import utilization
    from modelmeter.hardware import spec_from_peak
    from modelmeter.report import Cost, ModuleNode, OpRecord, Report

    # 1e9 MACs = 2e9 ops in 1 ms on a 1 TOP/s chip: 2e9 / 1e-3 / 1e12 = 200%
    root = ModuleNode("", "Net", ops=[OpRecord("aten.mm", Cost(macs=10**9, flops=2 * 10**9))])
    report = Report("net", "torch", "2mac", "meta", [], root)
    u = utilization(report, spec_from_peak(1e12, 1e10, dtype="float32"), 1e-3)
    assert any("above 100%" in n for n in u.notes)
    ok = utilization(report, spec_from_peak(1e12, 1e10, dtype="float32"), 1e-2)  # 20%
    assert not any("above 100%" in n for n in ok.notes)
