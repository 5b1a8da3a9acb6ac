"""Plots are written whole as PNG files (their looks are checked by eye, not here), need
matplotlib only when asked for, and say which extra to install when it is missing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modelmeter.usecases.analyze
from modelmeter.analysis.breakdown import breakdown_rows
from modelmeter.analysis.roofline import roofline
from modelmeter.cli import main
from modelmeter.errors import MissingDependency
from modelmeter.hardware import load_spec
from modelmeter.render import plots
from modelmeter.report import Cost, ModuleNode, OpRecord, Report

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.mark.parametrize("device", ["h100-sxm", "hi3519av100", "tpu-v4"])
def test_roofline_and_breakdown_are_written(tmp_path: Path, handmade: Report, device: str) -> None:
    roof = roofline(handmade, load_spec(device).with_efficiency(0.7, 0.9))
    for per_op in (False, True):
        out = tmp_path / f"roof_{per_op}.png"
        plots.save_roofline(handmade, roof, str(out), per_op=per_op)
        assert is_png(out)
    out = tmp_path / "time.png"
    plots.save_breakdown(handmade, roof, str(out), top=2)
    assert is_png(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "roof_False.png",
        "roof_True.png",
        "time.png",
    ]


MAGIC = {"png": PNG, "pdf": b"%PDF-", "svg": b"<?xml"}


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg", "PDF"])
def test_each_chart_is_written_in_the_format_its_name_asks(
    tmp_path: Path, handmade: Report, fmt: str
) -> None:
    # the extension picks the format (any case): the file starts with that format's magic
    roof = roofline(handmade, load_spec("h100-sxm"))
    magic = MAGIC[fmt.lower()]
    for name, save in (
        ("roof", lambda p: plots.save_roofline(handmade, roof, p)),
        ("time", lambda p: plots.save_breakdown(handmade, roof, p, top=2)),
    ):
        out = tmp_path / f"{name}.{fmt}"
        save(str(out))
        data = out.read_bytes()
        assert data[: len(magic)] == magic and len(data) > 1000, name
    if fmt == "svg":
        assert b"<svg" in (tmp_path / "roof.svg").read_bytes()


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_the_command_writes_pdf_and_svg(
    tmp_path: Path, handmade: Report, monkeypatch: pytest.MonkeyPatch, capsys: Any, fmt: str
) -> None:
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: handmade)
    roof, time = tmp_path / f"r.{fmt}", tmp_path / f"t.{fmt}"
    argv = ["analyze", "m", "--hardware", "t4", "--plot", str(roof), "--plot-breakdown", str(time)]
    assert main([*argv, "-f", "json"]) == 0
    for out in (roof, time):
        assert out.read_bytes()[:5] == MAGIC[fmt][:5]


def test_breakdown_parts_add_up_to_the_latency(handmade: Report) -> None:
    roof = roofline(handmade, load_spec("h100-sxm"))
    rows = breakdown_rows(roof, top=100)
    assert len(rows) == 4  # body, body.0, body.1, head have ops
    assert sum(sum(r[1:]) for r in rows) == pytest.approx(roof.latency_s)
    assert breakdown_rows(roof, top=1)[0][0] == max(
        roof.own, key=lambda n: roof.own[n].latency_s
    )


def test_a_report_without_flops_still_plots(tmp_path: Path) -> None:
    copy = OpRecord("aten.cat", Cost(bytes_read=4000, bytes_written=4000))
    r = Report("copies", "torch", "exact", "meta", [], ModuleNode("", "Fn", ops=[copy]))
    roof = roofline(r, load_spec("t4"))
    plots.save_roofline(r, roof, str(tmp_path / "r.png"))
    plots.save_breakdown(r, roof, str(tmp_path / "b.png"))
    assert is_png(tmp_path / "r.png") and is_png(tmp_path / "b.png")


def test_cli_writes_both_plots(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    handmade_factory: Callable[[], Report],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: handmade_factory())
    roof, bd = tmp_path / "roof.png", tmp_path / "time.png"
    code = main(
        ["analyze", "m", "--hardware", "a100-sxm-80gb", "--plot", str(roof), "--plot-ops",
         "--plot-breakdown", str(bd), "--plot-top", "3", "-f", "json"]
    )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0 and is_png(roof) and is_png(bd)
    assert f"wrote {roof}" in err and f"wrote {bd}" in err


def test_missing_matplotlib_names_the_plot_extra(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    handmade_factory: Callable[[], Report],
    tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingDependency, match=r"modelmeter\[plot\]"):
        plots.require_matplotlib()
    called: list[Any] = []
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: called.append(a))
    target = tmp_path / "roof.png"
    code = main(["analyze", "m", "--hardware", "t4", "--plot", str(target)])
    _, err = capsys.readouterr()
    assert code == 2 and "modelmeter[plot]" in err and len(err.strip().splitlines()) == 1
    assert not target.exists() and called == []  # checked before any work


def test_import_modelmeter_does_not_import_matplotlib() -> None:
    import subprocess

    code = (
        "import sys, modelmeter; modelmeter.load_spec('t4'); modelmeter.roofline; "
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
