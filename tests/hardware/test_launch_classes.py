"""Launch times per kernel class (``[overhead.launch_classes]``): read, checked, written,
overlaid from ``[attainable]``, shown, and priced per op by the roofline (docs/hardware.md,
"Launch time per kernel class")."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpec, HardwareSpecError, dump_toml, load_spec
from modelmeter.hardware.attainable import Attainable
from modelmeter.render.hardware import show_lines
from modelmeter.report import Cost, ModuleNode, OpRecord, Report

GOOD = """name = "mychip"
vendor = "Me"
kind = "gpu"
[memory]
bandwidth = "1T"
[compute]
bfloat16 = "100T"
[vector]
float32 = "10T"
"""


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "mychip.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_launch_classes_read_round_trip_and_show(tmp_path: Path) -> None:
    text = GOOD + '[overhead]\nlaunch = "1us"\n[overhead.launch_classes]\nconv = "10us"\n'
    spec = load_spec(_write(tmp_path, text))
    assert spec.launch_for("conv") == pytest.approx(10e-6)
    # a grouped convolution launches as a convolution (its parent class); others: launch
    assert spec.launch_for("grouped") == pytest.approx(10e-6)
    assert spec.launch_for("elementwise") == pytest.approx(1e-6)
    back = tmp_path / "again.toml"
    back.write_text(dump_toml(spec), encoding="utf-8")
    assert dict(load_spec(str(back)).launch_classes) == {"conv": pytest.approx(10e-6)}
    assert dict(show_lines(spec))["overhead.launch_classes.conv"].startswith("10 us per conv op")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[overhead.launch_classes]\nwarp = "2us"\n', "overhead.launch_classes.warp is not a "
                                                      "known kernel class"),
        ('[overhead.launch_classes]\nconv = "-2us"\n', "overhead.launch_classes.conv must be >= 0"),
        ('[overhead.launch_classes]\nconv = "fast"\n', "overhead.launch_classes.conv is not a time"),
        ("[overhead]\nlaunch_classes = 3\n", "overhead.launch_classes must be a table of kernel "
                                             'class -> time ([overhead.launch_classes] with e.g. '
                                             'conv = "3us")'),
        # following a by-dtype advice: the key is named as the wrong kind of key, not its value
        ('[overhead.launch_classes.bfloat16]\nconv = "3us"\n',
         "overhead.launch_classes.bfloat16 is not a known kernel class"),
        ("[overhead.launch_classes.conv]\nx = 1\n",
         'overhead.launch_classes.conv must be a time such as "3us", not a table'),
        ("[overhead.launch_classes]\nconv = inf\n",
         "overhead.launch_classes.conv must be a finite time such as '4us' (got inf)"),
        ("[overhead]\nruntimes = 2\n", "overhead.runtimes must be a table of runtime -> time "
                                        '([overhead.runtimes] with e.g. graphs = "3us")'),
        ('[overhead.runtimes.bfloat16]\ngraphs = "1us"\n',
         "overhead.runtimes.bfloat16 is not a runtime with its own overhead"),
        ("[overhead.runtimes]\ngraphs = nan\n", "overhead.runtimes.graphs must be a finite time"),
    ],
)
def test_bad_launch_classes_give_one_error(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(HardwareSpecError) as e:
        load_spec(_write(tmp_path, GOOD + extra))
    assert needle in str(e.value) and "mychip.toml" in str(e.value)


def _spec(attainable: Attainable | None = None, **kw: object) -> HardwareSpec:
    return HardwareSpec(name="toy", display_name="Toy", vendor="-", kind="gpu", bandwidth=1e12,
                        compute={"bfloat16": 100e12}, vector={"float32": 10e12},
                        kernel_overhead=0.0, attainable=attainable, **kw)  # type: ignore[arg-type]


def test_attainable_launch_classes_replace_the_datasheets_whole() -> None:
    datasheet = {"conv": 7e-6, "norm": 3e-6}
    s = _spec(Attainable(launch_classes={"conv": 10e-6}), launch_overhead=2e-6,
              launch_classes=datasheet).attained()
    # conv from [attainable]; norm not named there: the launch time, not the datasheet's 3 us
    assert (s.launch_for("conv"), s.launch_for("norm")) == (10e-6, 2e-6)
    assert s.ideal().launch_for("conv") == 10e-6  # overheads are not efficiencies


def test_roofline_prices_each_op_at_its_class_launch_time() -> None:
    # 1 TB/s, graphs (no host time): an add reading 1 MB is 1 us busy + its class's launch
    # (elementwise, not named: launch 1 us) = 2 us; a 1x1 convolution reading 1 MB is 1 us
    # busy + conv's 10 us = 11 us; in series on the queue: 13 us
    add = OpRecord("aten.add", Cost(flops=1, bytes_read=1_000_000))
    conv = OpRecord("aten.convolution", Cost(macs=1, flops=2, bytes_read=1_000_000),
                    shapes=((1, 4, 8, 8), (4, 4, 1, 1)))
    report = Report("two", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=[add, conv]))
    spec = _spec(launch_overhead=1e-6, launch_classes={"conv": 10e-6})
    r = roofline(report, spec, runtime="graphs")
    assert [t.launch_s for t in r.ops] == pytest.approx([1e-6, 10e-6])
    assert [t.latency_s for t in r.ops] == pytest.approx([2e-6, 11e-6])
    assert r.latency_s == pytest.approx(13e-6)


def test_h100_ships_its_launch_times_per_class() -> None:
    # the shipped figures: a pointwise kernel 1.1-1.2 us, a matmul 5.2 us beyond the roofline
    h100 = load_spec("h100-sxm").attained()
    assert h100.launch_for("elementwise") == pytest.approx(1.1e-6)
    assert h100.launch_for("movement") == pytest.approx(1.1e-6)  # not named: the default
    assert h100.launch_for("matmul") == h100.launch_for("attention") == pytest.approx(5.2e-6)
    assert h100.launch_for("grouped") == h100.launch_for("conv") == pytest.approx(10.4e-6)


# ---- measured by calibrate (CUDA graphs; the arithmetic and the cases checked here) ----------


def test_launch_figures_subtract_the_busy_time_and_default_to_elementwise() -> None:
    from modelmeter.hardware.calibrate_launch import launch_figures

    # conv: 12 us per op on the device - 2 us busy = 10 us; elementwise 1.5 - 0.25 = 1.25 us;
    # a class faster than its roofline (pool: 3 - 4 us) is floored at 0
    default, classes = launch_figures({"conv": 12e-6, "elementwise": 1.5e-6, "pool": 3e-6},
                                      {"conv": 2e-6, "elementwise": 0.25e-6, "pool": 4e-6})
    assert classes == pytest.approx({"conv": 10e-6, "elementwise": 1.25e-6, "pool": 0.0})
    assert default == pytest.approx(1.25e-6)
    assert launch_figures({"conv": 12e-6}, {})[0] is None  # no elementwise: no default


@pytest.mark.parametrize("cls", ["elementwise", "activation", "movement", "reduce", "norm",
                                 "matmul", "conv", "pool", "attention"])
def test_each_launch_case_is_one_op_of_its_class(cls: str) -> None:
    # the op calibrate times for a class must be analysed as that class, or its roofline busy
    # time (subtracted) and the figure's key would not match
    import torch

    from modelmeter.analysis.kernels import record_class
    from modelmeter.frontends.torch.launch_bench import launch_cases
    from modelmeter.usecases.analyze import analyze

    (_, _, (fn, host)), = [c for c in launch_cases(torch.device("cpu"), torch.bfloat16)
                           if c[0] == cls]
    ops = [op for node in analyze(fn, host).modules() for op in node.ops]
    assert [record_class(op) for op in ops] == [cls]
