"""``analyze --sweep`` and ``--formula``: the size syntax, the outputs (gold files for the table
and the formula; CSV and JSON the same exact figures; a chart) and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_helpers import one_error, run
from tiny_gpt2 import tiny_gpt2

from modelmeter.commands.sweep_options import parse_sweep, sweep_axes
from modelmeter.errors import InputError


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    return tiny_gpt2(tmp_path)


@pytest.mark.parametrize(
    ("spec", "name", "values"),
    [
        ("batch=1,2,4,8", "batch", [1, 2, 4, 8]),
        ("seq=128..1024", "seq", [128, 256, 512, 1024]),  # doubling
        ("seq=100..1000", "seq", [100, 200, 400, 800, 1000]),  # the end is always included
        ("seq=128..512:128", "seq", [128, 256, 384, 512]),  # a step
        ("seq=1,2,4..16", "seq", [1, 2, 4, 8, 16]),  # a mix; 4 is not repeated
        ("sequence_length=7", "sequence_length", [7]),  # an ONNX dimension's name
    ],
)
def test_sweep_syntax(spec: str, name: str, values: list[int]):
    assert parse_sweep(spec) == (name, values)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("batch", "write NAME=VALUES"),
        ("seq=0,1", "not a size"),
        ("seq=512..128", "goes down"),
        ("seq=1..x", "not a size"),
        ("seq=1..100000:1", "more than 4096"),
    ],
)
def test_bad_sweeps(spec: str, why: str):
    with pytest.raises(InputError, match=why):
        sweep_axes([spec])


def test_a_huge_grid_is_refused():
    with pytest.raises(InputError, match="at most 10000"):
        sweep_axes(["batch=1..200:1", "seq=1..200:1"])


def test_sweep_table_and_formula_gold(capsys: pytest.CaptureFixture[str], tiny: str, gold):
    code, out, _ = run(capsys, "analyze", tiny, "--sweep", "batch=1,2", "--sweep", "seq=8..64")
    assert code == 0
    gold("sweep_tiny.txt", out.replace(tiny.removeprefix("hf:"), "tiny-gpt2.json"))
    code, out, _ = run(capsys, "analyze", tiny, "--formula")
    assert code == 0
    gold("formula_tiny.txt", out)


def test_formula_markdown_is_paragraphs_and_code_bullets(capsys: pytest.CaptureFixture[str], tiny: str):
    # Before, every line was a code bullet, the two sentences too, the formulas with two
    # leading spaces inside the code span: "- `  MACs = ...`".
    code, out, _ = run(capsys, "analyze", tiny, "--formula", "-f", "md")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("hf:") and lines[1] == "" and lines[-2] == ""
    assert lines[-1].startswith("Fitted on ")
    assert all(line.startswith("- `") and not line.startswith("- ` ") for line in lines[2:-2])
    assert any(line.startswith("- `MACs = ") for line in lines)


def test_csv_and_json_have_the_same_exact_rows(capsys: pytest.CaptureFixture[str], tiny: str):
    args = ("analyze", tiny, "--sweep", "batch=1,3", "--sweep", "seq=16..256", "--hw", "h100-sxm")
    code, out, _ = run(capsys, *args, "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "modelmeter.sweep/1" and data["chip"] == "h100-sxm"
    code, out, _ = run(capsys, *args, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(data["rows"]) == 10
    for c, j in zip(rows, data["rows"]):
        for key in ("batch", "seq", "macs", "flops", "bytes_read", "peak_activation_bytes"):
            assert int(c[key]) == j[key]
        assert c["source"] == j["source"]
    # the formula in JSON: exact integer coefficients; MACs linear in b, at most s^2
    macs = data["formula"]["counts"]["macs"]
    assert all(isinstance(t["coefficient"], int) for t in macs["terms"])
    assert {tuple(t["powers"]) for t in macs["terms"]} <= {(1, 1), (1, 2)}


def test_sweep_chart(capsys: pytest.CaptureFixture[str], tiny: str, tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sweep.svg"
    code, out, err = run(capsys, "analyze", tiny, "--sweep", "seq=8..64", "--hw", "h100-sxm",
                         "--plot", str(path))  # fmt: skip
    assert code == 0 and "wrote" in err and "Latency" in out  # the table is printed too
    assert path.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--sweep", "seq=8", "-f", "latex"], "--sweep prints as"),
        (["--formula", "--plot", "f.png"], "--plot goes with --sweep"),
        (["--sweep", "seq=8", "--plot-breakdown", "b.png"], "--plot-breakdown draws one report"),
        (["--no-formula"], "goes with --sweep"),
        (["--sweep", "size=32"], "size: no image"),
        (["--sweep", "batch=1,2", "--batch", "2"], "both set the batch"),
        (["--formula", "-f", "csv"], "--formula prints as"),
        (["--sweep", "seq=8", "--hardware", "t4,l4"], "take one chip"),
    ],
)
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], tiny: str, extra: list[str], why: str):
    code, _, err = run(capsys, "analyze", tiny, *extra)
    assert code == 2
    assert why in one_error(err)
