"""``modelmeter measure`` on the command line: outputs, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import one_error, run

from modelmeter.render.measure import measure_text as render_text
from modelmeter.units import format_timing as format_seconds

FACTORY = """\
import torch


def make():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    return net, "4x16"
"""


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    f = tmp_path / "tinynet.py"
    f.write_text(FACTORY, encoding="utf-8")
    return f"{f}:make"


def test_table_output(model_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "measure",
        model_file,
        "--repeats",
        "3",
        "--warmup",
        "1",
        "--per-module",
        "--hardware",
        "epyc-9654",
    )
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    for needle in (
        "latency",
        "throughput",
        "samples/s",
        "FLOP/s",
        "peak memory",
        "predicted vs measured on epyc-9654",
        "roofline latency",
        "FLOPs / peak only",
        "with hooks",
        "(model)",
    ):
        assert needle in out, needle
    # per-module rows: the root and its three children at depth 1
    assert all(f"    {n} " in out for n in ("0", "1", "2"))


def test_json_to_file(model_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "m.json"
    code, out, _ = run(
        capsys,
        "measure",
        model_file,
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--batch",
        "2",
        "-f",
        "json",
        "-o",
        str(out_file),
        "--dtype",
        "bf16",
    )
    assert code == 0 and out == ""
    d = json.loads(out_file.read_text(encoding="utf-8"))
    assert d["schema"] == "modelmeter.measure/1"
    assert d["batch"] == 2 and d["dtype"] == "bfloat16" and d["repeats"] == 2
    # batch 2: 6272 FLOPs at batch 4 (test_measure_cpu) / 2 = 3136
    assert d["analysis"]["flops"] == 3136 and d["analysis"]["kernels"] == 3
    assert d["latency"]["median_s"] > 0 and d["prediction"] is None
    assert d["per_module"] is None


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--device", "tpu"], "invalid device"),
        (["--repeats", "0"], "must be >= 1"),
        (["--warmup", "-1"], "must be >= 0"),
        (["--dtype", "fp7"], "unknown dtype"),
        (["--hardware", "no-such-chip"], "unknown hardware"),
        (["--input", "4xq"], "malformed input shape"),
        (["--input", "4x17"], "failed"),
    ],
)
def test_bad_input_exits_2(
    model_file: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needle: str,
) -> None:
    out_file = tmp_path / "never.json"
    code, _, err = run(capsys, "measure", model_file, "--repeats", "1", "-o", str(out_file), *argv)
    assert code == 2 and needle in one_error(err)
    assert not out_file.exists()


def test_unknown_model_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "measure", "torchvision:resnet_nope")
    assert code == 2 and "unknown torchvision model" in one_error(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_device_exits_2(model_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "measure", model_file, "--device", "cuda")
    assert code == 2 and "not available" in one_error(err)


def test_format_seconds() -> None:
    assert format_seconds(None) == "-"
    assert format_seconds(1.5) == "1.500 s"
    assert format_seconds(0.01234) == "12.34 ms"
    assert format_seconds(8.4e-4) == "840.0 us"


def test_render_text_is_pure(handmade) -> None:  # noqa: ANN001
    from modelmeter.analysis.measure import summarize
    from modelmeter.analysis.timings import MemoryUse, Timings

    r = summarize(Timings("cpu", "toy", "t", [0.25, 0.75], 2, MemoryUse("none")), handmade)
    text = render_text(r)
    assert text == render_text(r)
    # median of [0.25, 0.75] = 0.5 s; batch 4 -> 8 samples/s; 330 FLOPs / 0.5 s = 660 FLOP/s
    assert "500.00 ms median" in text and "8.00 samples/s" in text and "660 FLOP/s" in text


def test_ratio_format() -> None:
    from modelmeter.units import format_ratio as _ratio

    assert _ratio(None) == "-"
    assert _ratio(1.234) == "1.23"
    assert _ratio(0.0031) == "0.0031"
