"""``modelmeter ops TEXT``: only the operators whose name, family or targets contain TEXT."""

from __future__ import annotations

import json

from cli_helpers import one_error, run

from modelmeter.registry import formulas


def test_ops_conv_lists_the_convolutions_only(capsys) -> None:
    code, out, _ = run(capsys, "ops", "conv", "-f", "json")
    assert code == 0
    data = json.loads(out)
    names = {f["name"] for f in data["formulas"]}
    assert {"convolution", "convolution_backward", "conv_tbc"} <= names
    assert "linear" not in names and "addmm" not in names
    for f in data["formulas"]:  # each shown one names conv somewhere
        text = " ".join([f["name"], f["family"], *f["aten"], *f["onnx"]]).lower()
        assert "conv" in text, f["name"]
    assert len(names) < len(formulas())
    for targets in data["zero_cost"].values():
        assert all("conv" in t.lower() for t in targets)


def test_ops_filter_matches_a_family_in_any_case(capsys) -> None:
    code, out, _ = run(capsys, "ops", "CONV", "-f", "json")
    assert code == 0
    family = {f.name for f in formulas() if f.family == "conv"}
    assert family <= {f["name"] for f in json.loads(out)["formulas"]}


def test_ops_filter_in_table_and_md(capsys) -> None:
    code, table, _ = run(capsys, "ops", "conv")
    assert code == 0 and "convolution" in table and "addmm" not in table
    code, md, _ = run(capsys, "ops", "conv", "-f", "md")
    assert code == 0 and "| convolution | conv |" in md and "| addmm |" not in md


def test_ops_filter_that_matches_nothing_is_one_error(capsys) -> None:
    code, out, err = run(capsys, "ops", "no-such-op")
    assert code == 2 and out == ""
    assert "no operator matches 'no-such-op'" in one_error(err)
