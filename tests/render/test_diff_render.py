"""The diff's renderer (render/diff.py): gold files of the table and the Markdown, the JSON
schema, rows that add up, and a narrow table that never cuts a number."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from diff_helpers import make_extended
from render_checks import RowsDontAddUp, check_diff

from modelmeter.analysis.budgets import check_budgets, parse_budget
from modelmeter.analysis.diff import Diff, Latencies, diff_reports
from modelmeter.render.diff import render_diff
from modelmeter.report import Report

Gold = Callable[[str, str], None]
BUDGETS = ("flops>+2%", "params>+0", "macs>4.2G", "bytes>+1KB", "latency>+40%")


@pytest.fixture
def base(handmade_factory: Callable[[], Report]) -> Callable[[], Report]:
    """A fresh hand-made report per call (tests/conftest.py's make_report)."""
    return handmade_factory


def _diff(base: Callable[[], Report]) -> Diff:
    # latencies as a roofline would give them: tail adds 1 ms (2 ms -> 3 ms, +50%)
    a = Latencies("l4", 0.002, {"body": 0.0015, "body.0": 0.001, "body.1": 0.0005,
                                "head": 0.0005})  # fmt: skip
    b = Latencies("l4", 0.003, {"body": 0.0015, "body.0": 0.001, "body.1": 0.0,
                                "head": 0.0005, "tail": 0.001})  # fmt: skip
    return diff_reports(base(), make_extended(base()), old_label="main.json",
                        new_label="branch.json", old_latency=a, new_latency=b)  # fmt: skip


def _checks(d: Diff) -> list:
    return check_budgets(d, [parse_budget(t) for t in BUDGETS])


def test_gold_diff_table_and_markdown(base: Callable[[], Report], gold: Gold) -> None:
    d = _diff(base)
    gold("diff_handmade.txt", render_diff(d, "table", checks=_checks(d), width=100))
    gold("diff_handmade.md", render_diff(d, "md", checks=_checks(d)))
    gold("diff_handmade_all.md", render_diff(diff_reports(base(), make_extended(base())),
                                             "md", show_all=True))  # fmt: skip


def test_json_schema_and_budgets(base: Callable[[], Report]) -> None:
    d = _diff(base)
    doc = json.loads(render_diff(d, "json", checks=_checks(d)))
    assert doc["schema"] == "modelmeter.diff/1" and doc["empty"] is False
    # params 121 -> 123, +2 (tail's Linear)
    assert doc["totals"]["params"] == {"old": 121, "new": 123, "change": 2,
                                       "relative": 2 / 121}  # fmt: skip
    assert doc["totals"]["latency"]["change"] == pytest.approx(0.001)
    assert doc["module_counts"] == {"added": 1, "removed": 0, "changed": 2, "unchanged": 2}
    assert [m["name"] for m in doc["modules"]] == ["body", "body.1", "tail"]  # unchanged hidden
    tail = doc["modules"][-1]
    assert tail["status"] == "added" and tail["old"] is None and tail["change"]["macs"] == 4
    budgets = {b["budget"]: b for b in doc["budgets"]}
    assert doc["broken"] == 2
    # params: +2 over +0; latency: +50% over +40%, by 10 points
    assert budgets["params>+0"]["broken"] and budgets["params>+0"]["over"] == 2
    assert budgets["latency>+40%"]["over"] == pytest.approx(10)
    assert not budgets["flops>+2%"]["broken"] and budgets["flops>+2%"]["over"] == 0
    every = json.loads(render_diff(d, "json", show_all=True))
    assert len(every["modules"]) == 5 and every["budgets"] == [] and every["broken"] == 0


def test_json_rows_add_up_to_the_totals(base: Callable[[], Report]) -> None:
    check_diff(render_diff(_diff(base), "json", show_all=True), base(), make_extended(base()))
    doc = json.loads(render_diff(_diff(base), "json", show_all=True))
    for f in ("macs", "flops", "bytes_read", "bytes_written"):
        assert sum(o["change"][f] for o in doc["operators"]) == doc["totals"][f]["change"]
    # the top-level modules' subtrees and the root's own ops (none here) make the total
    top = [m for m in doc["modules"] if "." not in m["name"]]
    assert sum(m["change"]["params"] for m in top) == doc["totals"]["params"]["change"]


def test_self_diff_says_no_change(base: Callable[[], Report]) -> None:
    d = diff_reports(base(), base())
    text = render_diff(d, "table")
    assert "no change" in text and "0 added, 0 removed, 0 changed, 4 unchanged" in text
    assert "| Module |" not in render_diff(d, "md")  # no rows to show


def test_narrow_table_never_cuts_a_number(base: Callable[[], Report]) -> None:
    d = _diff(base)
    text = render_diff(d, "table", checks=_checks(d), width=40)
    for number in ("+50.00%", "+1.00 ms", "-500.00 us", "-0.61%", "10.00 points"):
        assert number in text, number
    # the table is wider than asked rather than cut: every line is whole
    modules = text.split("modules:")[1].split("operators:")[0]
    assert "tail" in modules and "+1.00 ms" in modules


def test_unknown_format(base: Callable[[], Report]) -> None:
    with pytest.raises(ValueError, match="unknown format 'csv'; use one of table, md, json"):
        render_diff(_diff(base), "csv")


def test_depth_limits_the_module_rows(base: Callable[[], Report]) -> None:
    d = _diff(base)
    text = render_diff(d, "md", depth=1)
    assert "| body |" in text and "| tail |" in text and "| body.1 |" not in text
    assert "modules down to depth 1" in text
    # JSON keeps every changed row, whatever the depth
    assert len(json.loads(render_diff(d, "json", depth=1))["modules"]) == 3


def test_check_diff_catches_a_wrong_number(base: Callable[[], Report]) -> None:
    doc = json.loads(render_diff(_diff(base), "json", show_all=True))
    doc["operators"][0]["change"]["flops"] += 1
    with pytest.raises(RowsDontAddUp, match="operators' flops changes add up"):
        check_diff(json.dumps(doc), base(), make_extended(base()))


def _one(flops: int = 0, macs: int = 0) -> Report:
    from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord

    root = ModuleNode("", "N", calls=1, ops=[OpRecord("aten.mm", Cost(macs, flops))])
    return Report("m", "torch", "exact", "meta", [InputSpec((1,), "float32")], root)


def test_a_value_just_over_its_limit_never_reads_as_the_limit() -> None:
    from modelmeter.analysis.budgets import check_budget
    from modelmeter.render.diff import budget_rows

    # 1 GFLOP + 2% + 1 FLOP: +2.0000001%, over by 1e-7 points
    d = diff_reports(_one(10**9), _one(10**9 + 2 * 10**7 + 1))
    assert budget_rows([check_budget(d, parse_budget("flops>+2%"))]) == [
        ("flops>+2%", "BROKEN", "+2.0000001%", "0.0000001 points")
    ]
    d = diff_reports(_one(macs=1), _one(macs=4_200_000_001))  # one MAC over 4.2G
    assert budget_rows([check_budget(d, parse_budget("macs>4.2G"))]) == [
        ("macs>4.2G", "BROKEN", "4.20G (4,200,000,001)", "1")
    ]
