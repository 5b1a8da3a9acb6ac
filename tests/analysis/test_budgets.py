"""Budgets (analysis/budgets.py): parsing (one clear line per bad text), the budget file, and
exactness at the edge: a change of exactly the limit holds, one more unit breaks it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmeter.analysis.budgets import (
    Budget,
    check_budget,
    check_budgets,
    load_budgets,
    parse_budget,
)
from modelmeter.analysis.diff import Diff, Latencies, diff_reports
from modelmeter.errors import InputError
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, ParamStats, Report


def _report(flops: int = 0, params: int = 0, macs: int = 0, read: int = 0) -> Report:
    root = ModuleNode("", "Net", calls=1, own=ParamStats(params=params, param_bytes=4 * params),
                      ops=[OpRecord("aten.mm", Cost(macs, flops, read, 0, 0))])  # fmt: skip
    return Report("m", "torch", "exact", "meta", [InputSpec((1,), "float32")], root)


def _diff(old: dict[str, int], new: dict[str, int]) -> Diff:
    return diff_reports(_report(**old), _report(**new))


@pytest.mark.parametrize(
    ("text", "metric", "kind", "limit"),
    [
        ("flops>+2%", "flops", "relative", Fraction(2)),
        ("flops > 2.5%", "flops", "relative", Fraction(5, 2)),
        ("latency>-5%", "latency", "relative", Fraction(-5)),
        ("params>+0", "params", "change", Fraction(0)),
        ("params>+1M", "params", "change", Fraction(10**6)),
        ("params>7B", "params", "value", Fraction(7 * 10**9)),  # parameter counts: B = 10^9
        ("macs>4.2G", "macs", "value", Fraction(4_200_000_000)),
        ("MACS>4.2G", "macs", "value", Fraction(4_200_000_000)),
        ("weights>+1MiB", "weights", "change", Fraction(2**20)),
        ("activation_peak>2GB", "activation_peak", "value", Fraction(2 * 10**9)),
        ("bytes>1.5G", "bytes", "value", Fraction(1_500_000_000)),  # a bare prefix: SI bytes
        ("latency>20ms", "latency", "value", Fraction(1, 50)),
        ("latency>+0.5us", "latency", "change", Fraction(1, 2_000_000)),
        ("latency>+0", "latency", "change", Fraction(0)),
    ],
)
def test_parse(text: str, metric: str, kind: str, limit: Fraction) -> None:
    b = parse_budget(text)
    assert (b.metric, b.kind, b.limit) == (metric, kind, limit)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("flops", "not METRIC>LIMIT"),
        ("flops>>2%", "not METRIC>LIMIT"),
        ("flops<2%", "not METRIC>LIMIT"),
        ("flop>+2%", "unknown metric 'flop'; use one of params, macs"),
        ("flops>+2x", "unknown unit 'x' (a count takes K, M, G, T)"),
        ("params>+2Q", "a count takes K, M, G, T or B"),
        ("bytes>2Gb", "a size takes B, KB"),
        ("latency>20", "a latency needs a time unit"),
        ("macs>1e9", "not METRIC>LIMIT"),
        ("flops>+%", "not METRIC>LIMIT"),
    ],
)
def test_bad_budget_is_one_line(text: str, says: str) -> None:
    with pytest.raises(InputError) as e:
        parse_budget(text)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"bad budget {text!r} (--fail-if): ") and says in msg


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 10**9), st.integers(0, 300))
def test_relative_budget_holds_exactly_at_its_edge(k: int, pct: int) -> None:
    # old = 100k FLOPs; +pct% is exactly k*pct more: it holds, one more FLOP breaks it
    old = 100 * k
    edge = old + k * pct
    budget = parse_budget(f"flops>+{pct}%")
    at = check_budget(_diff({"flops": old}, {"flops": edge}), budget)
    over = check_budget(_diff({"flops": old}, {"flops": edge + 1}), budget)
    assert not at.broken and at.value == pct and at.over == 0
    assert over.broken and over.value == Fraction(100 * (k * pct + 1), old)
    assert over.over == Fraction(100, old)  # one FLOP is 100/old percent


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**12), st.integers(0, 10**6))
def test_change_and_value_budgets_hold_at_their_edge(old: int, limit: int) -> None:
    change = parse_budget(f"params>+{limit}")
    assert not check_budget(_diff({"params": old}, {"params": old + limit}), change).broken
    assert check_budget(_diff({"params": old}, {"params": old + limit + 1}), change).broken
    value = parse_budget(f"macs>{limit}")
    assert not check_budget(_diff({"macs": old}, {"macs": limit}), value).broken
    assert check_budget(_diff({"macs": old}, {"macs": limit + 1}), value).broken


def test_si_limit_edge() -> None:
    b = parse_budget("macs>4.2G")  # 4,200,000,000 exactly
    assert not check_budget(_diff({"macs": 1}, {"macs": 4_200_000_000}), b).broken
    assert check_budget(_diff({"macs": 1}, {"macs": 4_200_000_001}), b).over == 1


def test_relative_from_zero() -> None:
    b = parse_budget("flops>+50%")
    rise = check_budget(_diff({"flops": 0}, {"flops": 1}), b)
    assert rise.broken and rise.value is None and rise.over is None  # unbounded
    assert not check_budget(_diff({"flops": 0}, {"flops": 0}), b).broken  # 0 -> 0 is 0%
    # a budget that asks for a decrease is broken by no change
    assert check_budget(_diff({"flops": 0}, {"flops": 0}), parse_budget("flops>-1%")).broken


def test_latency_budget_needs_both_latencies() -> None:
    d = _diff({"flops": 1}, {"flops": 1})
    with pytest.raises(InputError, match="needs a latency on both sides: give --hardware"):
        check_budget(d, parse_budget("latency>+5%"))
    old, new = _report(flops=1), _report(flops=1)
    lat = diff_reports(old, new, old_latency=Latencies("x", 0.010, {}),
                       new_latency=Latencies("x", 0.0104, {}))  # fmt: skip
    # 10 ms -> 10.4 ms: +4% holds +5%, breaks +3%
    assert [c.broken for c in check_budgets(lat, [parse_budget("latency>+5%"),
                                                  parse_budget("latency>+3%")])] == [False, True]


def test_budget_file(tmp_path: Path) -> None:
    f = tmp_path / "budgets.toml"
    f.write_text('[budgets]\nmacs = "4.2G"\nflops = "+2%"\nlatency = ["+5%", "20ms"]\n'
                 "params = 0\n")  # fmt: skip
    got = load_budgets(str(f))
    assert [b.text for b in got] == ["macs>4.2G", "flops>+2%", "latency>+5%", "latency>20ms",
                                     "params>0"]  # fmt: skip
    assert all(isinstance(b, Budget) and b.source == str(f) for b in got)
    py = tmp_path / "pyproject.toml"
    py.write_text('[project]\nname = "x"\n\n[tool.modelmeter.budgets]\nparams = "+0"\n')
    assert [b.text for b in load_budgets(str(py))] == ["params>+0"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('[project]\nname = "x"\n', "has no [budgets] table (nor [tool.modelmeter.budgets])"),
        ("[budgets\n", "is not TOML"),
        ('[budgets]\nflop = "+2%"\n', "bad budget 'flop>+2%'"),
        ("[budgets]\nflops = true\n", 'give a text such as "+2%"'),
        ('budgets = "x"\n', "is not a table"),
    ],
)
def test_bad_budget_file(tmp_path: Path, content: str, says: str) -> None:
    f = tmp_path / "b.toml"
    f.write_text(content)
    with pytest.raises(InputError, match=None) as e:
        load_budgets(str(f))
    assert says in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="cannot read budget file"):
        load_budgets(str(tmp_path / "missing.toml"))
