"""Several models in one ``analyze`` (the paper table): one row per model whose figures are
each model's own report's totals, in every format; failures, plots and inputs with several."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from cli_helpers import one_error, run

MODELS = '''
import torch
from torch import nn


def lin():
    return nn.Linear(4, 2), torch.zeros(1, 4)


def conv():
    return nn.Conv2d(3, 16, 5), torch.zeros(1, 3, 96, 96)


def linear():
    return nn.Linear(4, 2)


def broken():
    raise RuntimeError("no model here")
'''


@pytest.fixture
def models(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "my_models.py"  # the underscore is escaped in LaTeX
    path.write_text(MODELS)
    return f"{path}:lin", f"{path}:conv"


def _csv(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def test_rows_are_the_hand_counted_totals(capsys, models) -> None:
    code, out, err = run(capsys, "analyze", *models, "-f", "csv")
    assert code == 0, err
    lin, conv = _csv(out)
    # Linear(4, 2) on 1x4: 4*2 + 2 = 10 params; 2 outputs x 4 = 8 MACs; FLOPs 2 x (4 mul +
    # 3 add) + 2 bias adds = 16; read 16 (input) + 32 (weight) + 8 (bias) = 56 B, written 8 B;
    # live at once: the input (16 B) and the output (8 B) = 24 B.
    assert lin["model"] == models[0] and lin["inputs"] == "1x4 float32"
    assert (lin["params"], lin["macs"], lin["flops"]) == ("10", "8", "16")
    assert (lin["bytes_read"], lin["bytes_written"], lin["peak_activation_bytes"]) == (
        "56", "8", "24",
    )
    # Conv2d(3, 16, 5) on 1x3x96x96: 16*3*25 + 16 = 1216 params; output 16x92x92 = 135424
    # values of 3*25 = 75 MACs each = 10156800 MACs; written 135424 * 4 = 541696 B; read the
    # input 3*96*96*4 = 110592 B + the weights 1216*4 = 4864 B = 115456 B.
    assert (conv["params"], conv["macs"]) == ("1216", "10156800")
    assert (conv["bytes_read"], conv["bytes_written"]) == ("115456", "541696")


def test_totals_equal_each_models_own_report(capsys, models) -> None:
    code, out, _ = run(capsys, "analyze", *models, "-f", "json", "--peak", "1T",
                       "--bandwidth", "10G")
    assert code == 0
    rows = json.loads(out)["rows"]
    for model, row in zip(models, rows, strict=True):
        code, own, _ = run(capsys, "analyze", model, "-f", "json", "--peak", "1T",
                           "--bandwidth", "10G")
        assert code == 0
        report = json.loads(own)
        total = report["total"]
        for key in ("params", "macs", "flops", "bytes_read", "bytes_written",
                    "peak_activation_bytes"):
            assert row[key] == total[key], key
        assert row["latency_s"] == report["roofline"]["latency_s"]
        assert row["bound"] == report["roofline"]["bound"]


def test_table_states_the_convention_and_inputs_once(capsys, models) -> None:
    code, out, _ = run(capsys, "analyze", *models, "--peak", "1T", "--bandwidth", "10G")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["Model", "Params", "MACs", "FLOPs", "Bytes", "Act.", "peak",
                                "Latency", "Bound"]
    assert lines[2].split()[:4] == [models[0], "10", "8", "16"]
    assert lines[3].split()[:4] == [models[1], "1.22K", "10.16M", "20.31M"]
    assert out.count("every multiply and every add") == 1
    assert "1x3x96x96 float32" in out and "predicted" in out


@pytest.mark.parametrize("chip", [False, True])
@pytest.mark.parametrize("columns", [60, 80, 120, 200])
def test_table_never_cuts_a_number(capsys, models, monkeypatch, columns, chip) -> None:
    # written to a pipe (capsys): $COLUMNS is the width, as for the module table
    monkeypatch.setenv("COLUMNS", str(columns))
    extra = ("--peak", "1T", "--bandwidth", "10G") if chip else ()
    code, out, _ = run(capsys, "analyze", *models, *extra)
    assert code == 0
    table = out.split("\n\n")[0].splitlines()  # the notes may hold a path longer than a line
    assert all(len(r) <= columns for r in table), out
    rows = table[2:4]
    cells = rows[1].split()[1:]
    # two decimals, or one when that makes it fit: abbreviated, never cut
    two, one = ["1.22K", "10.16M", "20.31M", "657.15", "KB"], ["1.2K", "10.2M", "20.3M", "657.2", "KB"]
    assert cells[:5] in (two, one)
    if not chip:
        assert cells[5:] == ["652.29", "KB"]
    assert ("Not shown at" in out) == (chip and columns == 60)


def test_markdown_right_aligns_numbers(capsys, models) -> None:
    code, out, _ = run(capsys, "analyze", *models, "-f", "md")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "| Model | Params | MACs | FLOPs | Bytes | Act. peak |"
    assert lines[1] == "|---|---:|---:|---:|---:|---:|"
    assert lines[2].startswith(f"| {models[0]} | 10 | 8 | 16 | 64 B | 24 B |")


def _strip_escaped(text: str) -> str:
    return text.replace("\\{", "").replace("\\}", "").replace("\\&", "")


def test_latex_is_booktabs_and_structurally_sound(capsys, models) -> None:
    code, out, _ = run(capsys, "analyze", *models, "-f", "latex", "--peak", "1T",
                       "--bandwidth", "10G")
    assert code == 0
    plain = _strip_escaped(out)
    assert plain.count("{") == plain.count("}")
    depth = 0
    for ch in plain:  # never closes more than it opened
        depth += (ch == "{") - (ch == "}")
        assert depth >= 0
    lines = out.splitlines()
    top, mid, bottom = (lines.index(r) for r in ("\\toprule", "\\midrule", "\\bottomrule"))
    assert top < mid < bottom
    assert "\\begin{tabular}{lrrrrrrl}" in lines  # numbers right-aligned, the bound left
    rows = lines[top + 1 : mid] + lines[mid + 1 : bottom]
    assert len(rows) == 3
    for row in rows:  # 8 columns: 7 ampersands, not counting escaped ones
        assert row.endswith(" \\\\") and row.replace("\\&", "").count("&") == 7, row
    assert "my\\_models.py:lin" in out and "my_models" not in out
    assert out.count("\\begin{") == out.count("\\end{")
    # conv's predicted 65.72 us in LaTeX's mu; the abbreviation's dot is not a sentence end
    assert "65.72 $\\mu$s" in out and "Act.\\ peak" in out


def test_one_model_in_latex_is_a_one_row_table(capsys, models) -> None:
    code, out, _ = run(capsys, "analyze", models[0], "-f", "latex")
    assert code == 0
    assert "\\toprule" in out and out.count(" \\\\") == 2  # header and one row


def test_input_applies_to_every_model(capsys, models) -> None:
    first = models[0].replace(":lin", ":linear")
    code, out, _ = run(capsys, "analyze", first, first, "-i", "3x4", "-f", "csv")
    assert code == 0
    rows = _csv(out)
    # Linear(4, 2) on 3x4: 3 rows x 8 MACs = 24
    assert [(r["inputs"], r["macs"]) for r in rows] == [("3x4 float32", "24")] * 2


def test_a_failing_model_is_named_and_the_others_shown(capsys, models) -> None:
    broken = models[0].replace(":lin", ":broken")
    code, out, err = run(capsys, "analyze", models[0], broken, models[1], "-f", "csv")
    assert code == 2
    assert one_error(err).startswith(f"modelmeter: error: {broken}: ")
    assert [r["model"] for r in _csv(out)] == [models[0], models[1]]


def test_plots_need_one_model(capsys, models, tmp_path) -> None:
    code, out, err = run(capsys, "analyze", *models, "--peak", "1T", "--bandwidth", "10G",
                         "--plot", str(tmp_path / "r.png"))
    assert code == 2 and out == ""
    assert re.search("give one MODEL", one_error(err))


def test_several_models_check_outputs_first(capsys, models) -> None:
    path = models[0].rpartition(":")[0]
    code, _, err = run(capsys, "analyze", *models, "-o", path)
    assert code == 2 and "my_models.py" in one_error(err)
