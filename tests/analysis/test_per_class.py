"""``measure --per-class``: the profiler's ops classed like the analysis' op records, and the
roofline's time per class beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.analysis.classes import ClassMeasured, ClassProfile, join_classes
from modelmeter.cli import main
from modelmeter.hardware import HardwareSpec
from modelmeter.report import Cost, ModuleNode, OpRecord, Report
from modelmeter.usecases.measure import measure


def every_class() -> nn.Module:
    """conv, depthwise conv, batch norm, ReLU, max pool, global average pool, linear."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


SPEC = HardwareSpec(
    name="toy-cpu",
    display_name="toy",
    vendor="-",
    kind="cpu",
    bandwidth=1e10,
    compute={"float32": 1e11},
    vector={"float32": 1e10},
    kernel_overhead=2e-6,
)


def test_profiled_ops_fall_in_the_analysis_classes() -> None:
    r = measure(every_class(), "2x3x16x16", warmup=1, repeats=3, per_class=True, hardware=SPEC)
    assert r.per_class is not None
    rows = {row.kernel_class: row for row in r.per_class.rows}
    # one op record per layer; flatten is a view (no record, no formula: "other")
    # AdaptiveAvgPool2d(1) decomposes to aten.mean before dispatch: reduce, on both sides
    for cls in ("conv", "depthwise", "norm", "activation", "pool", "reduce", "matmul"):
        assert rows[cls].records == 1, cls
        assert rows[cls].ops == 1, cls  # the same op, once per profiled call
        assert rows[cls].measured_s > 0
    assert r.per_class.profile.runs == 3 and not r.per_class.profile.device_time
    # measured classes are parts of a profiled call: their mean over the runs is within the
    # mean wall time (not the median: one slow run on a busy machine moves only the mean)
    assert r.per_class.measured_s <= r.per_class.profile.mean_s * 1.05
    # the prediction per class: roofline latency of its ops (CPU: busy + overhead, in series)
    report = modelmeter.analyze(every_class(), "2x3x16x16")
    roof = modelmeter.roofline(report, SPEC, phase="forward")
    conv = sum(t.latency_s for t in roof.ops if t.kernel_class == "conv")
    assert rows["conv"].predicted_s == pytest.approx(conv)
    assert rows["conv"].ratio == pytest.approx(conv / rows["conv"].measured_s)
    d = r.to_dict()["per_class"]
    assert d["basis"].startswith("host time") and len(d["classes"]) == len(r.per_class.rows)


def test_join_compares_device_time_with_busy_time() -> None:
    # two float32 adds on a 1 TB/s gpu, overhead 5 us: 2 MB -> 2 us busy, 1 MB -> 1 us busy
    ops = [
        OpRecord("aten.add", Cost(flops=1, bytes_read=2_000_000)),
        OpRecord("aten.add", Cost(flops=1, bytes_read=1_000_000)),
    ]
    report = Report("adds", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=ops))
    gpu = HardwareSpec(
        name="g", display_name="g", vendor="-", kind="gpu", bandwidth=1e12,
        compute={"float32": 1e14}, vector={"float32": 1e13}, kernel_overhead=5e-6,
    )  # fmt: skip
    roof = modelmeter.roofline(report, gpu)
    measured = [ClassMeasured("elementwise", seconds=6e-6, ops=2, kernels=2)]
    on_device = join_classes(ClassProfile("m", "device", 1, 1e-5, measured, True), report, roof)
    # device kernel time vs busy time: 2 + 1 = 3 us; 3 / 6 = 0.5
    (row,) = on_device.rows
    assert row.predicted_s == pytest.approx(3e-6) and row.ratio == pytest.approx(0.5)
    on_host = join_classes(ClassProfile("m", "host", 1, 1e-5, measured, False), report, roof)
    # host time per op: busy + the overhead each, 3 + 2 x 5 = 13 us
    assert on_host.rows[0].predicted_s == pytest.approx(13e-6)
    # a class measured but never recorded, and one recorded but not measured, both show
    extra = [*measured, ClassMeasured("other", seconds=1e-6, ops=1)]
    extra.append(ClassMeasured("attention", seconds=2e-6, ops=1))
    joined = join_classes(ClassProfile("m", "d", 1, 1e-5, extra, True), report, None)
    assert [(r.kernel_class, r.records, r.predicted_s) for r in joined.rows] == [
        ("elementwise", 2, None),
        ("attention", 0, None),
        ("other", 0, None),
    ]
    # the table says the run took a path the analysis did not trace ("other": no formula,
    # views and layout reorders, is expected and not named)
    assert [n.split(" (")[0] for n in joined.notes] == ["measured but not in the analysis: attention"]
    assert joined.to_dict()["notes"] == joined.notes


FACTORY = """\
import torch


def make():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    return net, "1x3x8x8"
"""


def test_cli_table_and_json(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "net.py"
    f.write_text(FACTORY, encoding="utf-8")
    argv = ["measure", f"{f}:make", "--repeats", "2", "--warmup", "1", "--per-class"]
    assert main([*argv, "--hardware", "epyc-9654"]) == 0
    out, err = capfd.readouterr()
    assert err == ""  # the profiler's C++ log lines (file descriptor 2) are silenced
    assert "per kernel class (torch.profiler, 2 calls" in out
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith("  conv ")] == ["conv"]
    assert main([*argv, "--format", "json"]) == 0
    d = json.loads(capfd.readouterr().out)["per_class"]
    assert {c["kernel_class"] for c in d["classes"]} >= {"conv", "activation"}
    assert all(c["predicted_s"] is None for c in d["classes"])  # no hardware: no prediction


def test_class_chart(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from modelmeter.analysis.classes import PerClass
    from modelmeter.render.class_plot import class_rows, classes_figure

    r = measure(every_class(), "2x3x16x16", warmup=1, repeats=2, per_class=True, hardware=SPEC)
    rows = class_rows(r)
    # every class measured or predicted, the longest (either figure) first
    assert {name for name, _, _ in rows} >= {"conv", "depthwise", "norm", "matmul"}
    longest = [max(m, p or 0.0) for _, m, p in rows]
    assert longest == sorted(longest, reverse=True)
    assert r.per_class is not None
    fig = classes_figure(r)
    (ax,) = fig.axes
    assert len(ax.patches) == 2 * len(rows)  # a measured and a predicted bar per class
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ticks = list(ax.get_yticks())
    assert labels == [name for name, _, _ in rows]
    assert ticks == sorted(ticks, reverse=True)  # the longest at the top
    assert isinstance(r.per_class, PerClass)
    # the command: --plot-classes implies --per-class and writes a whole PNG
    f = tmp_path / "net.py"
    f.write_text(FACTORY, encoding="utf-8")
    out = tmp_path / "classes.png"
    argv = ["measure", f"{f}:make", "--repeats", "2", "--warmup", "1"]
    assert main([*argv, "--plot-classes", str(out)]) == 0
    captured = capfd.readouterr()
    assert "per kernel class" in captured.out and f"wrote {out}" in captured.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert main([*argv, "--plot-classes", str(tmp_path / "classes.jpg")]) == 2
    assert "one of .png, .pdf, .svg" in capfd.readouterr().err
