"""What changed between two reports, and the budgets checked against it: a rich table (fitted
to the width by shortening names and dropping low-priority columns, never by cutting a number),
Markdown for a pull-request comment, and JSON (schema ``modelmeter.diff/1``).

Unchanged modules and operators are hidden unless ``show_all``. A pure function of a
:class:`~modelmeter.analysis.diff.Diff` and its :class:`~modelmeter.analysis.budgets.BudgetCheck`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelmeter.analysis.budgets import BudgetCheck
from modelmeter.analysis.diff import Delta, Diff, RowDiff
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import DIFF_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps
from modelmeter.render.table_layout import shorten_name, table_width
from modelmeter.units import format_bytes, format_count, format_params, format_seconds

DEFAULT_WIDTH = 160
TOTALS_HEADER = ("Metric", "Old", "New", "Change", "Change %")
MODULE_HEADER = ("Module", "Status", "Type", "Params", "MACs", "FLOPs", "Bytes", "FLOPs %")
OPERATOR_HEADER = ("Operator", "Status", "Calls", "MACs", "FLOPs", "Bytes", "FLOPs %")
LATENCY = "Latency"
TEXT_COLUMNS = ("Metric", "Module", "Operator", "Status", "Type", "Budget", "Result")
DROP_ORDER = ("Type", "FLOPs %", "Bytes")  # dropped first to last when a table is too wide
NAME_SHORT, NAME_MIN = 32, 12
# metric -> (label, formatter of a value)
METRIC_TEXT: dict[str, tuple[str, Callable[[float], str]]] = {
    "params": ("Params", format_params),
    "macs": ("MACs", format_count),
    "flops": ("FLOPs", format_count),
    "bytes": ("Bytes read + written", format_bytes),
    "bytes_read": ("Bytes read", format_bytes),
    "bytes_written": ("Bytes written", format_bytes),
    "activation_peak": ("Activation peak", format_bytes),
    "weights": ("Weights (native dtype)", format_bytes),
    "latency": ("Latency (roofline)", format_seconds),
}


def render_diff(
    diff: Diff,
    fmt: str = "table",
    *,
    checks: Sequence[BudgetCheck] = (),
    show_all: bool = False,
    depth: int | None = None,
    width: int = DEFAULT_WIDTH,
) -> str:
    """The diff in one of ``DIFF_FORMATS``, with the budgets' results when there are any.
    ``show_all``: the unchanged rows too; ``depth``: the module rows down to that depth (table
    and md; the top-level modules are depth 1)."""
    shown = Shown(show_all, depth)
    if fmt == "table":
        return _table(diff, checks, shown, width)
    if fmt == "md":
        return _markdown(diff, checks, shown)
    if fmt == "json":
        d = diff.to_dict(show_all)
        d["budgets"] = [c.to_dict() for c in checks]
        d["broken"] = sum(c.broken for c in checks)
        return dumps(d)
    raise unknown_format(fmt, DIFF_FORMATS)


# ---- cells ------------------------------------------------------------------------------------


def signed(value: float | None, fmt: Callable[[float], str]) -> str:
    """``+160``, ``-221.18K``, ``0`` (``-`` when unknown)."""
    if value is None:
        return "-"
    if not value:
        return "0"
    text = fmt(value)
    return text if text.startswith("-") else "+" + text


def relative(d: Delta) -> str:
    """``+10.19%``, ``0%``, ``new`` (from 0), ``-`` (unknown)."""
    if not d.known or d.old is None or d.new is None:
        return "-"
    r = d.relative
    if r is None:
        return "from 0"
    return "0%" if r == 0 else f"{100 * r:+.2f}%"


def totals_rows(diff: Diff) -> list[tuple[str, ...]]:
    """(label, old, new, change, change %) per metric; latency only where both sides have it."""
    rows = []
    for metric, (label, fmt) in METRIC_TEXT.items():
        d = diff.totals.get(metric)
        if d.old is None or d.new is None:
            continue
        rows.append((label, fmt(d.old), fmt(d.new), signed(d.change, fmt), relative(d)))
    return rows


def _has_latency(diff: Diff) -> bool:
    return diff.old.chip is not None and diff.new.chip is not None


@dataclass(frozen=True, slots=True)
class Shown:
    """Which rows are shown: unchanged ones too (``show_all``), modules down to ``depth``."""

    show_all: bool = False
    depth: int | None = None


def module_cells(diff: Diff, shown: Shown) -> list[tuple[str, ...]]:
    out = []
    for r in diff.modules:
        if (r.status == "unchanged" and not shown.show_all) or (
            shown.depth is not None and r.depth > shown.depth
        ):
            continue
        cells = [r.name, r.status, r.type, signed(r.delta("params").change, format_params)]
        cells += _cost_cells(r)
        if _has_latency(diff):
            cells.append(signed(r.delta("latency_s").change, format_seconds))
        out.append(tuple(cells))
    return out


def _cost_cells(r: RowDiff) -> list[str]:
    return [
        signed(r.delta("macs").change, format_count),
        signed(r.delta("flops").change, format_count),
        signed(r.delta("bytes").change, format_bytes),
        relative(r.delta("flops")),
    ]


def operator_cells(diff: Diff, shown: Shown) -> list[tuple[str, ...]]:
    return [
        (r.name, r.status, signed(r.delta("calls").change, str), *_cost_cells(r))
        for r in diff.operators
        if shown.show_all or r.status != "unchanged"
    ]


def _percent(x: Fraction, other: Fraction | None, sign: str = "+") -> str:
    """``x`` percent with 2 decimals, more when needed to tell it from ``other`` (a value
    just over its limit is never printed equal to it)."""
    for digits in range(2, 13):
        text = f"{float(x):{sign}.{digits}f}"
        if other is None or x == other or Fraction(text) != other:
            return text
    return text


def _limit_text(c: BudgetCheck, x: Fraction | None) -> str:
    """The measured value: a percentage, a change or a new value in the metric's unit (with
    the exact figure when the rounded one would read as the limit)."""
    if x is None:
        return "unbounded (from 0)"
    b = c.budget
    if b.kind == "relative":
        return _percent(x, b.limit) + "%"
    fmt = METRIC_TEXT[b.metric][1]
    text = signed(float(x), fmt) if b.kind == "change" else fmt(float(x))
    limit = signed(float(b.limit), fmt) if b.kind == "change" else fmt(float(b.limit))
    if text == limit and x != b.limit:
        sign = "+" if b.kind == "change" else ""
        if x.denominator == 1:
            text += f" ({int(x):{sign},})"
        else:
            text += f" ({float(x):{sign}.9g}{' s' if b.metric == 'latency' else ''})"
    return text


def budget_rows(checks: Sequence[BudgetCheck]) -> list[tuple[str, str, str, str]]:
    """(budget, result, measured, over by) per budget."""
    rows = []
    for c in checks:
        over = "-" if not c.broken else _over_text(c)
        rows.append((c.budget.text, "BROKEN" if c.broken else "ok", _limit_text(c, c.value), over))
    return rows


def _over_text(c: BudgetCheck) -> str:
    if c.over is None:
        return "unbounded"
    if c.budget.kind == "relative":
        return _percent(c.over, Fraction(0), "") + " points"
    return METRIC_TEXT[c.budget.metric][1](float(c.over))


def broken_lines(checks: Sequence[BudgetCheck]) -> list[str]:
    """One line per broken budget: ``flops>+2%: +3.10%, over by 1.10 points``."""
    return [f"{text}: {value}, over by {over}"
            for (text, result, value, over) in budget_rows(checks) if result == "BROKEN"]  # fmt: skip


def summary(diff: Diff, which: str, shown: Shown) -> str:
    """``modules: 1 added, 0 removed, 2 changed, 6 unchanged (not shown; --all shows them)``."""
    counts = diff.counts(diff.modules if which == "modules" else diff.operators)
    hidden = "" if shown.show_all or not counts["unchanged"] else " (not shown; --all shows them)"
    if which == "modules" and shown.depth is not None:
        hidden += f"; modules down to depth {shown.depth}"
    return f"{which}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + hidden


def header_lines(diff: Diff) -> list[str]:
    o, n = diff.old, diff.new
    lines = [f"old: {o.label} · {o.frontend} · {o.mode} · convention {o.convention}"
             + (f" · {o.chip}" if o.chip else ""),
             f"new: {n.label} · {n.frontend} · {n.mode} · convention {n.convention}"
             + (f" · {n.chip}" if n.chip else "")]  # fmt: skip
    if diff.empty:
        lines.append("no change")
    return lines + [f"note: {x}" for x in diff.notes]


# ---- table --------------------------------------------------------------------------------------


def _fit(
    header: tuple[str, ...], rows: list[tuple[str, ...]], width: int
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Shorten names (from the middle), then drop DROP_ORDER's columns one by one, until the
    table fits; numbers are never cut (a table that still does not fit is wider)."""
    keep = list(header)

    def build(name_width: int | None) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        idx = [header.index(h) for h in keep]
        body = [tuple(shorten_name(r[i], name_width) if i == 0 and name_width else r[i]
                      for i in idx) for r in rows]  # fmt: skip
        return tuple(keep), body

    for name_width in (None, NAME_SHORT):
        shown = build(name_width)
        if table_width(*shown) <= width:
            return shown
    for col in (c for c in DROP_ORDER if c in keep):
        keep.remove(col)
        shown = build(NAME_SHORT)
        if table_width(*shown) <= width:
            return shown
    return build(NAME_MIN)


def _rich(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left", box=box.ROUNDED, header_style="bold")
    for i, head in enumerate(header):
        numeric = head not in TEXT_COLUMNS
        longest = max([len(head)] + [len(r[i]) for r in rows])
        table.add_column(head, justify="right" if numeric else "left", no_wrap=True,
                         min_width=longest if numeric else None)  # fmt: skip
    for row in rows:
        style = "bold red" if "BROKEN" in row else None
        table.add_row(*plain(*row), style=style)
    return table


def _table(diff: Diff, checks: Sequence[BudgetCheck], shown: Shown, width: int) -> str:
    parts: list[RenderableType] = [Text(line) for line in header_lines(diff)]
    parts.append(_rich("totals", TOTALS_HEADER, totals_rows(diff)))
    need = table_width(TOTALS_HEADER, totals_rows(diff))
    lat = (LATENCY,) if _has_latency(diff) else ()
    for which, header, rows in (
        ("modules", (*MODULE_HEADER, *lat), module_cells(diff, shown)),
        ("operators", OPERATOR_HEADER, operator_cells(diff, shown)),
    ):
        parts.append(Text(summary(diff, which, shown)))
        if rows:
            head, body = _fit(header, rows, width)
            need = max(need, table_width(head, body))
            parts.append(_rich("", head, body))
    if checks:
        broken = sum(c.broken for c in checks)
        parts.append(Text(f"budgets: {broken} of {len(checks)} broken"))
        parts.append(_rich("", ("Budget", "Result", "Measured", "Over by"), budget_rows(checks)))
    return to_text(Group(*parts), max(width, need))


# ---- markdown -----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: list[tuple[str, ...]]) -> list[str]:
    aligns = ["---" if h in TEXT_COLUMNS else "---:" for h in header]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    return out + ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]


def _markdown(diff: Diff, checks: Sequence[BudgetCheck], shown: Shown) -> str:
    o, n = diff.old, diff.new
    out = [f"### modelmeter diff: `{_md_cell(o.label)}` → `{_md_cell(n.label)}`", ""]
    if checks:
        broken = sum(c.broken for c in checks)
        verdict = f"**{broken} of {len(checks)} budgets broken**" if broken else (
            f"all {len(checks)} budgets hold")
        out += [verdict, "", *_md_table(("Budget", "Result", "Measured", "Over by"),
                                        budget_rows(checks)), ""]  # fmt: skip
    out += _md_table(TOTALS_HEADER, totals_rows(diff))
    lat = (LATENCY,) if _has_latency(diff) else ()
    for which, header, rows in (
        ("modules", (*MODULE_HEADER, *lat), module_cells(diff, shown)),
        ("operators", OPERATOR_HEADER, operator_cells(diff, shown)),
    ):
        if not rows:
            out += ["", f"**{summary(diff, which, shown)}**"]
            continue
        out += ["", f"<details><summary>{summary(diff, which, shown)}</summary>", ""]
        out += [*_md_table(header, rows), "", "</details>"]
    out += ["", *(f"- {line}" for line in header_lines(diff))]
    return "\n".join(out) + "\n"
