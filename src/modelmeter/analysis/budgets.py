"""Budgets a change must stay within, for CI: ``flops>+2%`` (the relative change may be at most
+2%), ``params>+0`` (the change at most 0), ``macs>4.2G`` (the new value at most 4.2 G). Each
text names what breaks the budget: METRIC > LIMIT.

- LIMIT with ``%`` (signed or not): the relative change, (new - old) / old, in percent;
- LIMIT with a sign: the change, new - old, in the metric's unit;
- LIMIT without a sign: the new value.

Units: counts (params, macs, flops) take K, M, G, T, P (10^3 ...; params also B = 10^9, as
parameter counts are written); sizes (bytes, bytes_read, bytes_written, activation_peak,
weights) take B, KB, MB, GB, TB or KiB, MiB, GiB, TiB (a bare prefix is SI); latency needs a
time unit (s, ms, us, ns) unless the limit is 0. Limits are exact decimals and the check is
exact (rational arithmetic): a change of exactly +2% holds ``flops>+2%``, one more FLOP
breaks it.

A budget file is TOML: ``[budgets]`` (or ``[tool.modelmeter.budgets]`` in a pyproject.toml)
maps a metric to a limit or a list of limits: ``macs = "4.2G"``, ``flops = "+2%"``,
``latency = ["+5%", "20ms"]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from modelmeter.analysis.diff import METRICS, Diff
from modelmeter.errors import InputError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("relative", "change", "value")
COUNTS = ("params", "macs", "flops")
SIZES = ("bytes", "bytes_read", "bytes_written", "activation_peak", "weights")
EXAMPLES = "write e.g. flops>+2%, params>+0, macs>4.2G, latency>+5%"
_SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_SIZE_UNITS = {
    **{f"{p}B": v for p, v in _SI.items()},
    **{p: v for p, v in _SI.items() if p},
    "kB": 10**3,
    **{f"{p}iB": 1024**i for i, p in enumerate(("K", "M", "G", "T", "P"), 1)},
}
_COUNT_UNITS = {**_SI, "k": 10**3}
_TIME_UNITS = {"s": Fraction(1), "ms": Fraction(1, 10**3), "us": Fraction(1, 10**6),
               "µs": Fraction(1, 10**6), "ns": Fraction(1, 10**9)}  # fmt: skip
_TEXT = re.compile(r"^\s*([A-Za-z_]+)\s*>\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-zµ%]*)\s*$")


@dataclass(frozen=True, slots=True)
class Budget:
    """``metric`` may not exceed ``limit``: a relative change in percent, a change or a new
    value (seconds for latency, bytes for sizes). ``text`` is how it was written."""

    metric: str
    kind: str
    limit: Fraction
    text: str
    source: str = "--fail-if"

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.text, "metric": self.metric, "kind": self.kind,
                "limit": _number(self.limit), "source": self.source}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """A budget checked against a diff: the measured ``value`` (in the budget's kind; None for
    a relative change from 0, an infinite increase), whether it broke, and by how much it
    went over the limit (0 when it held)."""

    budget: Budget
    value: Fraction | None
    broken: bool

    @property
    def over(self) -> Fraction | None:
        """value - limit when broken (None: without bound, a rise from 0), else 0."""
        if not self.broken:
            return Fraction(0)
        return None if self.value is None else self.value - self.budget.limit

    def to_dict(self) -> dict[str, Any]:
        return {**self.budget.to_dict(), "value": None if self.value is None else _number(
            self.value), "broken": self.broken,
            "over": None if self.over is None else _number(self.over)}  # fmt: skip


def _number(x: Fraction) -> int | float:
    return int(x) if x.denominator == 1 else float(x)


def _scale(metric: str, unit: str, kind: str, amount: Fraction) -> Fraction | str:
    """The factor of ``unit`` for ``metric``, or the reason it is refused."""
    if kind == "relative":
        return Fraction(1) if unit == "%" else "a percentage ends with %"
    if metric == "latency":
        if unit in _TIME_UNITS:
            return _TIME_UNITS[unit]
        if not unit and amount == 0:
            return Fraction(1)
        return "a latency needs a time unit (s, ms, us, ns)"
    units = _SIZE_UNITS if metric in SIZES else {**_COUNT_UNITS, **({"B": 10**9}
                                                                     if metric == "params" else {})}
    if unit in units:
        return Fraction(units[unit])
    what = "a size takes B, KB, MB, GB, KiB, MiB, GiB" if metric in SIZES else (
        "a count takes K, M, G, T" + (" or B" if metric == "params" else ""))
    return f"unknown unit {unit!r} ({what})"


def parse_budget(text: str, source: str = "--fail-if") -> Budget:
    """One budget text (``flops>+2%``); an InputError of one line naming what is wrong."""
    shown = str(text)[:60]
    m = _TEXT.match(str(text))
    if not m:
        raise InputError(f"bad budget {shown!r} ({source}): not METRIC>LIMIT; {EXAMPLES}")
    metric, sign, number, unit = m.groups()
    metric = metric.lower()
    if metric not in METRICS:
        raise InputError(
            f"bad budget {shown!r} ({source}): unknown metric {metric!r}; use one of "
            f"{', '.join(METRICS)}"
        )
    kind = "relative" if unit == "%" else "change" if sign else "value"
    amount = Fraction(number)
    scale = _scale(metric, unit, kind, amount)
    if isinstance(scale, str):
        raise InputError(f"bad budget {shown!r} ({source}): {scale}; {EXAMPLES}")
    limit = amount * scale * (-1 if sign == "-" else 1)
    canonical = f"{metric}>{sign}{number}{unit}"
    return Budget(metric, kind, limit, canonical, source)


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def budgets_from_table(table: Any, source: str) -> list[Budget]:
    """The budgets of a ``[budgets]`` table: ``metric = "LIMIT"`` or a list of limits."""
    if not isinstance(table, dict):
        raise InputError(f"{source}: [budgets] is not a table of METRIC = \"LIMIT\"")
    out = []
    for metric, value in table.items():
        for limit in _values(value):
            if isinstance(limit, bool) or not isinstance(limit, (str, int, float)):
                raise InputError(
                    f"bad budget {metric} = {str(limit)[:40]!r} ({source}): give a text such "
                    'as "+2%" or "4.2G"'
                )
            if isinstance(limit, float) and not math.isfinite(limit):
                raise InputError(f"bad budget {metric} = {limit} ({source}): not a number")
            text = limit if isinstance(limit, str) else format(limit, "f").rstrip("0").rstrip(".")
            out.append(parse_budget(f"{metric}>{text.strip()}", source))
    return out


def load_budgets(path: str) -> list[Budget]:
    """The budgets of a TOML file: its ``[budgets]`` table, or ``[tool.modelmeter.budgets]``
    (a pyproject.toml). InputError when it has neither or a budget is bad."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read budget file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"budget file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"budget file {path} is not TOML: {e}") from None
    table = data.get("budgets")
    if table is None:
        table = data.get("tool", {}).get("modelmeter", {}).get("budgets")
    if table is None:
        raise InputError(
            f"budget file {path} has no [budgets] table (nor [tool.modelmeter.budgets])"
        )
    return budgets_from_table(table, path)


def _exact(x: int | float) -> Fraction:
    return Fraction(x)


def check_budget(diff: Diff, budget: Budget) -> BudgetCheck:
    """Whether ``diff`` breaks ``budget`` (exactly: no rounding). InputError when the metric is
    unknown on a side (latency without a chip)."""
    d = diff.totals.get(budget.metric)
    if d.old is None or d.new is None:
        raise InputError(
            f"budget {budget.text} needs a latency on both sides: give --hardware (or "
            "reports written with one)"
        )
    old, new = _exact(d.old), _exact(d.new)
    if budget.kind == "value":
        return BudgetCheck(budget, new, new > budget.limit)
    if budget.kind == "change":
        return BudgetCheck(budget, new - old, new - old > budget.limit)
    if old == 0:  # from nothing: 0% if still nothing, else an unbounded rise
        if new == 0:
            return BudgetCheck(budget, Fraction(0), budget.limit < 0)
        return BudgetCheck(budget, None, True) if new > 0 else BudgetCheck(budget, None, False)
    value = (new - old) * 100 / old
    return BudgetCheck(budget, value, value > budget.limit)


def check_budgets(diff: Diff, budgets: list[Budget]) -> list[BudgetCheck]:
    """Every budget checked, in the order given."""
    return [check_budget(diff, b) for b in budgets]


__all__ = ["Budget", "BudgetCheck", "parse_budget", "budgets_from_table", "load_budgets",
           "check_budget", "check_budgets", "KINDS"]  # fmt: skip
