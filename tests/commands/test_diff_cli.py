"""``modelmeter diff`` through ``cli.main``: two small nn models (a Sequential with an extra
layer) as models and as saved reports, the exit codes (0 budgets hold, 3 a budget broken, 2
bad input, one line), budget files and latency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import one_error, run
from render_checks import check_diff

from modelmeter.commands.reports import read_report

MODELS = """
import torch
from torch import nn


def old():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.zeros(1, 4)


def new():
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)]
    return nn.Sequential(*layers), torch.zeros(1, 4)
"""


@pytest.fixture
def models(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "seq.py"
    path.write_text(MODELS)
    return f"{path}:old", f"{path}:new"


@pytest.fixture
def reports(capsys, models, tmp_path: Path) -> tuple[str, str]:
    out = []
    for model, name in zip(models, ("old.json", "new.json"), strict=True):
        path = str(tmp_path / name)
        code, _, err = run(capsys, "analyze", model, "-f", "json", "-o", path)
        assert code == 0, err
        out.append(path)
    return out[0], out[1]


def _json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "diff", *argv, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def test_extra_layer_hand_derived(capsys, models) -> None:
    doc = _json(capsys, *models, "--all")
    # old: Linear(4,8) 40 params, 32 MACs, 64 FLOPs; ReLU 8 FLOPs; Linear(8,2) 18, 16, 32
    #      = 58 params, 48 MACs, 104 FLOPs
    # new: Linear(4,8); ReLU; Linear(8,8) 72 params, 64 MACs, 128 FLOPs; ReLU 8 FLOPs;
    #      Linear(8,2) 18, 16, 32 = 130 params, 112 MACs, 240 FLOPs
    t = doc["totals"]
    assert (t["params"]["old"], t["params"]["new"], t["params"]["change"]) == (58, 130, 72)
    assert (t["macs"]["change"], t["flops"]["change"]) == (64, 136)
    rows = {m["name"]: m for m in doc["modules"]}
    assert {n: r["status"] for n, r in rows.items()} == {
        "0": "unchanged", "1": "unchanged", "2": "changed", "3": "added", "4": "added",
    }  # fmt: skip
    # module 2 is matched by name: Linear(8,2) -> Linear(8,8): params 18 -> 72, MACs 16 -> 64;
    # bytes read 8x4 (input) + 16x4 + 2x4 = 104 -> 32 + 64x4 + 8x4 = 320, written 8 -> 32
    two = rows["2"]["change"]
    assert (two["params"], two["macs"], two["flops"], two["bytes"]) == (54, 48, 96, 240)
    assert rows["3"]["old"] is None and rows["3"]["new"]["flops"] == 8  # the ReLU(8)
    assert rows["4"]["change"]["params"] == 18 and rows["4"]["change"]["macs"] == 16
    ops = {o["name"]: o["change"]["calls"] for o in doc["operators"]}
    assert ops == {"aten.addmm": 1, "aten.relu": 1}
    # the reverse: the extra modules are removed, the deltas change sign
    back = _json(capsys, models[1], models[0])
    assert back["totals"]["flops"]["change"] == -136
    assert {m["name"]: m["status"] for m in back["modules"]} == {
        "2": "changed", "3": "removed", "4": "removed",
    }  # fmt: skip


def test_saved_reports_give_the_models_diff(capsys, models, reports) -> None:
    from_models = _json(capsys, *models)
    code, text, err = run(capsys, "diff", *reports, "-f", "json", "--all")
    assert code == 0, err
    check_diff(text, *(read_report(r)[0] for r in reports))  # the rows add up
    from_files = _json(capsys, *reports)
    for doc in (from_models, from_files):
        del doc["old"]["label"], doc["new"]["label"]
    assert from_files == from_models


def test_self_diff_is_empty_and_holds_every_budget(capsys, reports) -> None:
    code, out, err = run(capsys, "diff", reports[0], reports[0], "--fail-if", "params>+0",
                         "--fail-if", "flops>+0%")  # fmt: skip
    assert code == 0 and err == ""
    assert "no change" in out and "budgets: 0 of 2 broken" in out


def test_budget_exit_codes(capsys, reports) -> None:
    # FLOPs 104 -> 240: +130.77%; holds +131%, breaks +130%
    code, out, err = run(capsys, "diff", *reports, "--fail-if", "flops>+131%")
    assert code == 0, err
    code, out, err = run(capsys, "diff", *reports, "--fail-if", "flops>+130%",
                         "--fail-if", "params>+72", "--fail-if", "params>+71")  # fmt: skip
    assert code == 3
    assert err.splitlines() == [
        "modelmeter: budget broken: flops>+130%: +130.77%, over by 0.77 points",
        "modelmeter: budget broken: params>+71: +72, over by 1",
    ]
    assert "budgets: 2 of 3 broken" in out


def test_markdown_for_a_pull_request(capsys, reports, tmp_path: Path) -> None:
    comment = tmp_path / "comment.md"
    code, out, err = run(capsys, "diff", *reports, "-f", "md", "-o", str(comment),
                         "--fail-if", "macs>100")  # fmt: skip
    assert code == 3 and out == ""
    text = comment.read_text()
    assert text.startswith("### modelmeter diff: ") and "**1 of 1 budgets broken**" in text
    assert "| macs>100 | BROKEN | 112 | 12 |" in text  # 112 MACs, 12 over


def test_budget_file_and_pyproject(capsys, reports, tmp_path: Path) -> None:
    f = tmp_path / "budgets.toml"
    f.write_text('[budgets]\nmacs = "+64"\nparams = "130"\n')
    assert run(capsys, "diff", *reports, "--budgets", str(f))[0] == 0  # both at their edge
    py = tmp_path / "pyproject.toml"
    py.write_text('[tool.modelmeter.budgets]\nmacs = "+63"\n')
    code, _, err = run(capsys, "diff", *reports, "--budgets", str(py))
    assert code == 3 and "macs>+63: +64, over by 1" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--fail-if", "flops>>2%"], "bad budget 'flops>>2%' (--fail-if): not METRIC>LIMIT"),
        (["--fail-if", "flop>+2%"], "unknown metric 'flop'"),
        (["--fail-if", "latency>+5%"], "needs a latency on both sides: give --hardware"),
        (["--budgets", "missing.toml"], "cannot read budget file missing.toml"),
        (["--input", "1x4"], "OLD and NEW are saved reports"),
    ],
)
def test_bad_input_is_one_line(capsys, reports, argv, says, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "diff", *reports, *argv)
    assert code == 2 and out == ""
    assert says in one_error(err)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"a": 1}', "is not a modelmeter JSON report: not a modelmeter.report/1 document"),
        ("[1, 2]", "not a modelmeter.report/1 document: a list, not an object"),
        ("not json", "is not a modelmeter JSON report"),
        ('{"schema": "modelmeter.report/1"}', "malformed modelmeter.report/1 document"),
    ],
)
def test_not_a_report_is_one_line(capsys, reports, tmp_path: Path, content, says) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out, err = run(capsys, "diff", reports[0], str(bad))
    assert code == 2 and out == ""
    assert says in one_error(err) and str(bad) in err


def test_malformed_roofline_is_one_line(capsys, reports, tmp_path: Path) -> None:
    doc = json.loads(Path(reports[0]).read_text())
    doc["roofline"], doc["hardware"] = {"latency_s": "fast"}, {"name": "x"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, _, err = run(capsys, "diff", str(bad), reports[1])
    assert code == 2 and "malformed roofline: latency_s 'fast'" in one_error(err)


def test_latency_with_a_chip(capsys, models, reports, tmp_path: Path) -> None:
    doc = _json(capsys, *reports, "--peak", "1T", "--bandwidth", "1G")
    lat = doc["totals"]["latency"]
    assert doc["old"]["chip"] == doc["new"]["chip"] and lat["new"] > lat["old"] > 0
    # a report saved with a chip carries its latency; the other side has none: a note
    chip = str(tmp_path / "chip.json")
    assert run(capsys, "analyze", models[1], "-f", "json", "-o", chip, "--peak", "1T",
               "--bandwidth", "1G")[0] == 0  # fmt: skip
    doc = _json(capsys, reports[0], chip)
    assert doc["totals"]["latency"]["old"] is None and "only one side" in doc["notes"][0]
    # both saved with the chip: their own latencies compare, and the budget applies
    chip_old = str(tmp_path / "chip_old.json")
    run(capsys, "analyze", models[0], "-f", "json", "-o", chip_old, "--peak", "1T",
        "--bandwidth", "1G")  # fmt: skip
    saved = _json(capsys, chip_old, chip)["totals"]["latency"]
    assert saved == lat
    code, _, err = run(capsys, "diff", chip_old, chip, "--fail-if", "latency>+0%")
    assert code == 3 and "latency>+0%" in err


def test_output_may_not_overwrite_an_input(capsys, reports) -> None:
    code, _, err = run(capsys, "diff", *reports, "-o", reports[1])
    assert code == 2 and "it is an input" in one_error(err)


def test_help_lists_examples_and_exit_codes(capsys) -> None:
    code, out, _ = run(capsys, "diff", "--help")
    assert code == 0 and "exit codes: 0 no budget broken, 3 a budget broken" in out
    assert "--fail-if" in out and "file.onnx" in out


def test_docs_budget_file_and_workflow_parse(tmp_path: Path) -> None:
    import re

    from modelmeter.analysis.budgets import load_budgets

    text = (Path(__file__).resolve().parents[2] / "docs" / "diff.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", text, re.S)
    assert toml is not None
    f = tmp_path / "budgets.toml"
    f.write_text(toml.group(1))
    assert [b.text for b in load_budgets(str(f))] == [
        "macs>4.2G", "flops>+2%", "params>+0", "latency>+5%", "latency>20ms",
    ]  # fmt: skip
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    steps = workflow["jobs"]["modelmeter"]["steps"]
    assert any("modelmeter diff" in s.get("run", "") for s in steps)
