"""Grouped convolutions as their own kernel class, and the kernel-size rule of depthwise
convolutions (docs/hardware.md, "Efficiency factors"): each checked against a hand derivation."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest
import torch

import modelmeter
from modelmeter.analysis.kernels import is_grouped, kernel_class, kernel_taps, record_class
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpec, HardwareSpecError, dump_toml, spec_from_dict
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def toy(**kw: Any) -> HardwareSpec:
    """100 TFLOP/s bf16 matrix, 10 TFLOP/s bf16 vector, 1 TB/s, no overhead."""
    base: dict[str, Any] = dict(name="toy", display_name="Toy", vendor="-", kind="gpu",
                                bandwidth=1e12, compute={"bfloat16": 100e12},
                                vector={"bfloat16": 10e12})
    base.update(kw)
    return HardwareSpec(**base)


def one_op(rec: OpRecord) -> Report:
    root = ModuleNode("", "Fn", calls=1, ops=[rec])
    return Report("fn", "torch", "exact", "meta", [InputSpec((1,), rec.dtype)], root)


# ---- which class ---------------------------------------------------------------------------


def test_grouped_is_told_from_the_weight_or_the_groups() -> None:
    # input 32 channels, weight [64, 8, 3, 3]: 8 channels per group, 32 / 8 = 4 groups
    assert is_grouped([[1, 32, 5, 5], [64, 8, 3, 3]])
    assert kernel_class("conv", [[1, 32, 5, 5], [64, 8, 3, 3]]) == "grouped"
    assert kernel_class("conv", [[1, 32, 5, 5]], groups=4) == "grouped"
    # one group (weight [64, 32, 3, 3]) is dense; one channel per group is depthwise
    assert kernel_class("conv", [[1, 32, 5, 5], [64, 32, 3, 3]]) == "conv"
    assert kernel_class("conv", [[1, 32, 5, 5], [32, 1, 3, 3]]) == "depthwise"
    assert kernel_class("conv", [[1, 32, 5, 5]], groups=32) == "depthwise"
    # 32 channels over a weight of 5 per group do not divide: not read as grouped
    assert not is_grouped([[1, 32, 5, 5], [64, 5, 3, 3]])


def test_traced_convolutions_fall_in_three_classes() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(16, 16, 3, groups=4),  # 4 channels per group: grouped
        torch.nn.Conv2d(16, 16, 3, groups=16),  # depthwise
        torch.nn.Conv2d(16, 8, 1),  # dense
    ).eval()
    r = modelmeter.analyze(model, "1x16x9x9")
    recs = [rec for n in r.modules() for rec in n.ops]
    assert [record_class(rec) for rec in recs] == ["grouped", "depthwise", "conv"]
    # taps per output: 3 x 3 = 9, 3 x 3 = 9, 1 x 1 = 1
    assert [kernel_taps(rec) for rec in recs] == [9, 9, 1]
    # the grouped one runs on the matrix units (a matrix product per group)
    assert recs[0].runs_on == "matrix"


# ---- grouped: its own figures, else the dense convolution's ----------------------------------


def test_grouped_falls_back_to_the_dense_convolution() -> None:
    spec = toy(kernel_efficiency={"conv": 0.5}, kernel_memory={"conv": 0.8})
    # a file that measured conv only prices grouped convolutions as convolutions
    assert spec.kernel_factors("grouped", "bfloat16") == (0.5, 0.8)
    own = toy(kernel_efficiency={"conv": 0.5},
              dtype_kernels={"bfloat16": {"grouped": (0.1, 0.2)}})
    assert own.kernel_factors("grouped", "bfloat16") == (0.1, 0.2)
    assert own.kernel_factors("grouped", "float32") == (0.5, 0.5)  # no float32 table: conv's
    assert toy().kernel_factors("grouped") == (1.0, 1.0)


def test_grouped_convolution_priced_at_its_own_fraction() -> None:
    # grouped = { compute = 0.25, memory = 0.5 } in bf16: 1e10 FLOPs, 1e7 bytes
    #   compute 1e10 / (100e12 x 0.25) = 4e-4 s ; memory 1e7 / (1e12 x 0.5) = 2e-5 s
    spec = toy(dtype_kernels={"bfloat16": {"grouped": (0.25, 0.5), "conv": (1.0, 1.0)}})
    rec = OpRecord("aten.convolution", Cost(macs=5 * 10**9, flops=10**10, bytes_read=10**7),
                   dtype="bfloat16", shapes=((1, 32, 5, 5), (64, 8, 3, 3)))
    (t,) = roofline(one_op(rec), spec).ops
    assert t.kernel_class == "grouped"
    assert t.compute_s == pytest.approx(4e-4) and t.memory_s == pytest.approx(2e-5)


# ---- depthwise: the kernel's size ------------------------------------------------------------


def test_taps_factor_by_hand() -> None:
    spec = toy(depthwise_taps={"bfloat16": 0.5})
    # (49 / 9) ** 0.5 = 2.3333; (25 / 9) ** 0.5 = 1.6667; 9 taps: 1; no exponent: 1
    assert spec.taps_factor("bfloat16", 49) == pytest.approx(7 / 3)
    assert spec.taps_factor("bfloat16", 25) == pytest.approx(5 / 3)
    assert spec.taps_factor("bfloat16", 9) == 1.0
    assert spec.taps_factor("float32", 49) == 1.0
    assert spec.taps_factor("bfloat16", 0) == 1.0  # no kernel dimensions known


def test_a_7x7_depthwise_kernel_runs_at_a_higher_rate() -> None:
    # depthwise = 0.2 in bf16 (measured on 3x3), exponent 0.5: a 7x7 kernel of 1e9 FLOPs
    #   kc = 0.2 x (49 / 9) ** 0.5 = 0.46667
    #   compute 1e9 / (10e12 x 0.46667) = 2.142857e-4 s (at exponent 0: 1e9 / 2e12 = 5e-4 s)
    #   memory 1e6 / (1e12 x 0.2) = 5e-6 s: the memory side is not scaled
    spec = toy(dtype_kernels={"bfloat16": {"depthwise": (0.2, 0.2)}},
               depthwise_taps={"bfloat16": 0.5})
    rec = OpRecord("aten.convolution", Cost(macs=5 * 10**8, flops=10**9, bytes_read=10**6),
                   dtype="bfloat16", shapes=((1, 8, 9, 9), (8, 1, 7, 7)), unit="vector")
    (t,) = roofline(one_op(rec), spec).ops
    assert t.kernel_class == "depthwise"
    assert t.kernel_efficiency == pytest.approx(0.2 * 7 / 3)
    assert t.compute_s == pytest.approx(2.142857e-4, rel=1e-6)
    assert t.memory_s == pytest.approx(5e-6)
    # never above the priced ceiling: exponent 2 gives 0.2 x (49/9)^2 = 5.93, capped at 1
    fast = toy(dtype_kernels={"bfloat16": {"depthwise": (0.2, 0.2)}},
               depthwise_taps={"bfloat16": 2.0})
    (t,) = roofline(one_op(rec), fast).ops
    assert t.kernel_efficiency == 1.0 and t.compute_s == pytest.approx(1e-4)
    # --ideal drops the rule with every other efficiency: 1e9 / 10e12 = 1e-4 s
    (t,) = roofline(one_op(rec), spec, ideal=True).ops
    assert t.compute_s == pytest.approx(1e-4)


def test_taps_exponent_in_a_file() -> None:
    doc: dict[str, Any] = {
        "name": "x", "vendor": "v", "kind": "gpu", "memory": {"bandwidth": "1T"},
        "compute": {"bfloat16": "100T"},
        "attainable": {"basis": "measured", "source": "s",
                       "efficiency": {"depthwise_taps": {"bfloat16": 0.75}}},
    }  # fmt: skip
    spec = spec_from_dict(doc)
    assert spec_from_dict(tomllib.loads(dump_toml(spec))).attainable == spec.attainable
    assert spec.attained().depthwise_taps == {"bfloat16": 0.75}
    assert dict(spec.depthwise_taps) == {}  # the datasheet's own: none
    doc["attainable"]["efficiency"]["depthwise_taps"] = {"bfloat16": 3}
    with pytest.raises(HardwareSpecError, match=r"depthwise_taps\.bfloat16 must be at most 2"):
        spec_from_dict(doc, "f.toml")
    doc["attainable"]["efficiency"]["depthwise_taps"] = {"bf16": 0.5}
    with pytest.raises(HardwareSpecError, match="is not a known dtype"):
        spec_from_dict(doc, "f.toml")


# ---- eager: host time per module call ------------------------------------------------------


def two_modules() -> Report:
    """root (no ops of its own) > a (ops r1, r2) and b (op r3, called twice); 1e9 FLOPs each
    in float32 on the toy chip's 10 TFLOP/s vector units: 1e-4 s busy per op."""
    def rec(seq: int) -> OpRecord:
        return OpRecord("aten.exp", Cost(flops=10**9), dtype="float32", seq=seq)

    a = ModuleNode("a", "A", depth=1, calls=1, ops=[rec(0), rec(1)])
    b = ModuleNode("b", "B", depth=1, calls=2, ops=[rec(2)])
    root = ModuleNode("", "Root", calls=1, children=[a, b])
    return Report("m", "torch", "exact", "meta", [InputSpec((1,), "float32")], root)


def test_module_calls_begin_at_their_first_op() -> None:
    from modelmeter.analysis.module_calls import calls_before

    # r1 opens the model's call and a's (1 + 1); r2 none; r3 b's two calls
    assert calls_before(two_modules()) == [2, 0, 2]
    # traced: Sequential > Conv2d, ReLU: three module calls, the first two at the convolution
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1), torch.nn.ReLU()).eval()
    assert calls_before(modelmeter.analyze(model, "1x2x4x4")) == [2, 1]


class _Holder(torch.nn.Module):
    """Calls the two linears its ModuleList holds one by one: the list is never called."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def test_a_container_never_called_is_not_charged() -> None:
    from modelmeter.analysis.module_calls import calls_before

    report = modelmeter.analyze(_Holder().eval(), "1x2")
    holder = next(m for m in report.modules() if m.name == "layers")
    assert (report.root.calls, holder.calls) == (1, 0)
    # three module calls, not four: the model's and layers.0's at the first linear's op,
    # layers.1's at the second's; the ModuleList (calls 0) adds none
    counts = calls_before(report)
    assert sum(counts) == 3
    assert [c for c in counts if c] == [2, 1]
    # a report whose root says 0 calls (the model is always called once): still 1
    root = replace(two_modules().root, calls=0)
    assert calls_before(replace(two_modules(), root=root)) == [2, 0, 2]


def test_an_onnx_report_is_charged_no_module_call() -> None:
    from modelmeter.analysis.module_calls import calls_before

    # the same tree as two_modules, said of the ONNX frontend: its modules are node-name
    # scopes, no nn.Module runs, so no op begins a module call
    onnx = replace(two_modules(), frontend="onnx")
    assert calls_before(onnx) == [0, 0, 0]
    spec = toy(vector={"float32": 10e12}, kernel_overhead=5e-6, module_call=1e-6,
               overlap=False)
    # in series, eager: 3 x (100 us busy + 5 us per op) = 315 us, not the torch report's 319
    assert roofline(onnx, spec).latency_s == pytest.approx(315e-6)
    assert roofline(two_modules(), spec).latency_s == pytest.approx(319e-6)


def test_module_call_time_is_eager_host_time() -> None:
    spec = toy(vector={"float32": 10e12}, kernel_overhead=5e-6, module_call=1e-6,
               overlap=False)
    roof = roofline(two_modules(), spec)
    # in series: busy 1e-4 s + 5 us per op + 1 us per module call begun at it
    #   r1: 100 + 5 + 2 = 107 us; r2: 105 us; r3: 100 + 5 + 2 = 107 us; total 319 us
    assert [t.overhead_s for t in roof.ops] == pytest.approx([7e-6, 5e-6, 7e-6])
    assert roof.latency_s == pytest.approx(319e-6)
    # graphs replays the kernels: no per-op and no per-module host time, 3 x 100 us
    assert roofline(two_modules(), spec, runtime="graphs").latency_s == pytest.approx(300e-6)
    # on a GPU queue the host's 7 + 5 + 7 us hide behind the 100 us kernels: only r1 waits
    #   r1 issued at 7 us, done at 107; r2 issued at 12, r3 at 19: 307 us in all
    queued = roofline(two_modules(), toy(vector={"float32": 10e12}, kernel_overhead=5e-6,
                                         module_call=1e-6))
    assert queued.latency_s == pytest.approx(307e-6)


def test_hardware_show_lists_the_new_figures() -> None:
    from modelmeter.hardware import load_spec
    from modelmeter.render.hardware import show_lines

    lines = dict(show_lines(load_spec("h100-sxm")))
    assert lines["attainable.overhead.module_call"] == "3 us per module call (eager)"
    assert lines["attainable.efficiency.depthwise_taps.bfloat16"].startswith("0.5: ")
    assert lines["attainable.efficiency.dtypes.bfloat16.grouped"].startswith("compute 0.074")


def test_grouped_convolution_fuses_with_its_batch_norm() -> None:
    from modelmeter.analysis.fusion import fuse

    model = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, groups=4), torch.nn.BatchNorm2d(16),
                                torch.nn.ReLU()).eval()
    r = modelmeter.analyze(model, "1x16x9x9")
    # three kernels unfused (grouped conv, batch norm, ReLU), one under conv-bn-act
    assert sum(len(n.ops) for n in r.modules()) == 3
    fused = fuse(r, ("conv-bn-act",))
    assert [record_class(rec) for n in fused.modules() for rec in n.ops] == ["grouped"]


def test_top_level_figures_in_a_calibrated_style_file() -> None:
    doc: dict[str, Any] = {
        "name": "x", "vendor": "v", "kind": "cpu", "memory": {"bandwidth": "1T"},
        "compute": {"float32": "1T"}, "overhead": {"kernel": "5us", "module_call": "2us"},
        "efficiency": {"depthwise_taps": {"float32": 0.5}},
    }  # fmt: skip
    spec = spec_from_dict(doc)
    assert spec.module_call_s == 2e-6 and dict(spec.depthwise_taps) == {"float32": 0.5}
    again = spec_from_dict(tomllib.loads(dump_toml(spec)))
    assert (again.module_call, dict(again.depthwise_taps)) == (2e-6, {"float32": 0.5})
    # the pure datasheet roofline keeps the host times (not efficiencies), drops the exponent
    assert spec.ideal().module_call_s == 2e-6 and dict(spec.ideal().depthwise_taps) == {}
