"""The command line: hardware list/show, --hardware / --peak on analyze, utilization."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import one_error, run

import modelmeter.usecases.analyze
from modelmeter.hardware import list_specs, load_spec
from modelmeter.render import render_report
from modelmeter.render.hardware import render_hardware_list
from modelmeter.report import Report
from modelmeter.units import byte_units


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, handmade_factory: Callable[[], Report]) -> list[Any]:
    """The ``analyze`` use case returns the hand-built report; records its calls."""
    calls: list[Any] = []

    def analyze(*args: Any, **kwargs: Any) -> Report:
        calls.append((args, kwargs))
        return handmade_factory()

    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", analyze)
    return calls


BAD_TOML = 'name = "bad"\nvendor = "x"\nkind = "gpu"\n[memory]\nbandwidth = "-1T"\n[compute]\nint8 = "1T"\n'


# ---- hardware list / show ----------------------------------------------------------------------


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "hardware", "list")
    assert code == 0
    assert len(list_specs()) >= 20
    for s in list_specs():
        assert f"│ {s.name} " in out
    assert "Source" in out and "Verified" in out


def test_list_shows_memory_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "hardware", "list")
    assert code == 0 and "│   Memory │" in out
    a10 = next(line for line in out.splitlines() if line.startswith("│ a10 "))
    assert "│    24 GB │" in a10  # a10.toml: capacity = "24G" (the A10's 24 GB)
    md = render_hardware_list(list_specs(), "md")
    row = next(line for line in md.splitlines() if line.startswith("| h200 |"))
    assert "| 141 GB |" in row  # the H200's 141 GB
    with byte_units("iec"):  # --units iec: 141e9 / 2^30 = 131.32 GiB
        md = render_hardware_list(list_specs(), "md")
    row = next(line for line in md.splitlines() if line.startswith("| h200 |"))
    assert "| 131.32 GiB |" in row


def test_list_md_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "hardware", "list", "--format", "md")
    assert code == 0 and out == render_hardware_list(list_specs(), "md")
    code, out, _ = run(capsys, "hardware", "list", "--format", "json")
    data = json.loads(out)
    assert len(data) >= 20 and {"name", "source", "verified", "compute"} <= set(data[0])
    target = tmp_path / "hw.md"
    assert run(capsys, "hardware", "list", "-f", "md", "-o", str(target))[0] == 0
    assert target.read_text() == render_hardware_list(list_specs(), "md")


def test_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "hardware", "show", "h100-sxm")
    assert code == 0 and "989.50 TFLOP/s" in out and "3.35 TB/s" in out
    code, out, _ = run(capsys, "hardware", "show", "h100-sxm", "--format", "toml")
    p = tmp_path / "copy.toml"
    p.write_text(out)
    assert load_spec(str(p)).compute == load_spec("h100-sxm").compute
    code, out, _ = run(capsys, "hardware", "show", "tpu-v4", "--format", "json")
    assert json.loads(out)["compute"]["bfloat16"] == 275e12


def test_show_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "hardware", "show", "h1OO")
    assert code == 2 and "unknown hardware 'h1OO'" in one_error(err)
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_TOML)
    code, _, err = run(capsys, "hardware", "show", str(bad))
    line = one_error(err)
    assert code == 2 and str(bad) in line and "memory.bandwidth must be > 0" in line
    code, _, err = run(capsys, "hardware")
    assert code == 2 and "list" in one_error(err)


# ---- analyze --hardware ------------------------------------------------------------------------


def test_analyze_json_with_hardware(capsys: pytest.CaptureFixture[str], fake: list[Any]) -> None:
    code, out, err = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "--format", "json")
    assert code == 0
    d = json.loads(out)
    roof = modelmeter.roofline(Report.from_dict(d), load_spec("h100-sxm"))
    assert d["hardware"]["name"] == "h100-sxm"
    assert d["roofline"]["latency_s"] == pytest.approx(roof.latency_s)
    assert all("roofline" in m for m in d["modules"])
    assert "UNVERIFIED" not in err


def test_analyze_table_with_peak(capsys: pytest.CaptureFixture[str], fake: list[Any]) -> None:
    code, out, err = run(
        capsys, "analyze", "m", "--peak", "1.7T", "--bandwidth", "25.6G", "--depth", "all"
    )
    assert code == 0
    for text in ("Latency", "Bound", "ridge point", "66.4 FLOP/B", "assumed quantised to int8"):
        assert text in out
    assert "UNVERIFIED" in out and "UNVERIFIED" in err  # figures from the command line


def test_analyze_without_hardware_is_unchanged(
    capsys: pytest.CaptureFixture[str], fake: list[Any], handmade: Report
) -> None:
    code, out, _ = run(capsys, "analyze", "m", "--format", "json")
    assert code == 0 and out == render_report(handmade, "json")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--hardware", "h100-sxm", "--peak", "1T", "--bandwidth", "1G"], "not both"),
        (["--peak", "1.7T"], "--peak and --bandwidth go together"),
        (["--peak", "fast", "--bandwidth", "1G"], "--peak: not a number"),
        (["--peak", "1T", "--bandwidth=-1G"], "--bandwidth: must be a positive"),
        (["--peak", "1T", "--bandwidth", "0"], "--bandwidth: must be a positive"),
        (["--peak", "1T", "--bandwidth", "1G", "--peak-dtype", "int9"], "unknown dtype"),
        (["--hardware", "nope"], "unknown hardware 'nope'"),
        (["--plot", "x.png"], "need --hardware"),
        (["--hardware", "t4", "--plot", "x.jpg"], "one of .png, .pdf, .svg"),
        (["--hardware", "t4", "--plot-breakdown", "x.png", "--plot-top", "0"], "--plot-top"),
    ],
)
def test_analyze_option_errors(
    capsys: pytest.CaptureFixture[str], fake: list[Any], args: list[str], says: str
) -> None:
    code, out, err = run(capsys, "analyze", "m", *args)
    assert code == 2 and says in one_error(err) and out == ""
    assert fake == []  # failed before analysing


def test_bad_hardware_file_writes_nothing(
    capsys: pytest.CaptureFixture[str], fake: list[Any], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_TOML)
    target = tmp_path / "out.json"
    code, _, err = run(
        capsys, "analyze", "m", "--hardware", str(bad), "-f", "json", "-o", str(target)
    )
    assert code == 2 and str(bad) in one_error(err)
    assert not target.exists() and fake == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


# ---- utilization ---------------------------------------------------------------------------------


def test_utilization_from_a_saved_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, handmade: Report
) -> None:
    saved = tmp_path / "r.json"
    saved.write_text(render_report(handmade, "json"))
    code, out, err = run(
        capsys, "utilization", str(saved), "--hardware", "hi3519av100", "--latency", "1us",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    d = json.loads(out)
    # the hand-built report: 110 MACs, 330 FLOPs; 2 x 110 / 1e-6 s / 1.7e12 = 1.2941e-4
    assert d["macs"] == 110 and d["flops"] == 330
    assert d["mac_utilization"] == pytest.approx(2 * 110 / 1e-6 / 1.7e12)
    assert d["flop_utilization"] == pytest.approx(330 / 1e-6 / 1.7e12)
    assert "UNVERIFIED" in err
    code, out, _ = run(
        capsys, "utilization", str(saved), "--peak", "1.7T", "--bandwidth", "10G", "-t", "1us"
    )
    assert code == 0 and "MAC utilization" in out and "0.0%" in out


def test_utilization_table(capsys: pytest.CaptureFixture[str], fake: list[Any]) -> None:
    code, out, _ = run(capsys, "utilization", "m", "--hardware", "h100-sxm", "--latency", "2ms")
    assert code == 0
    # 2 x 110 / 2e-3 / 67e12 (float32 MACs on the vector units) = 1.6e-9 -> "0.0%"
    assert "MAC utilization   0.0% = 2 x 110 MACs / 2.00 ms" in out
    assert "vector.float32" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--latency", "soon", "--hardware", "t4"], "--latency: not a time"),
        (["--latency", "0ms", "--hardware", "t4"], "--latency must be a positive"),
        # a bare number once meant seconds without a word: 12 is refused, 12ms suggested
        (["--latency", "12", "--hardware", "t4"], "--latency needs a unit: write e.g. 12ms"),
        (["--latency", "1e-3", "--hardware", "t4"], "(units s, ms, us, ns; got '1e-3')"),
        (["--latency", "1ms"], "say which chip"),
    ],
)
def test_utilization_errors(
    capsys: pytest.CaptureFixture[str], fake: list[Any], args: list[str], says: str
) -> None:
    code, _, err = run(capsys, "utilization", "m", *args)
    assert code == 2 and says in one_error(err)


def test_utilization_bad_report_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text('{"schema": "something else"}')
    code, _, err = run(capsys, "utilization", str(bad), "--hardware", "t4", "-t", "1ms")
    assert code == 2 and "not a modelmeter JSON report" in one_error(err)
