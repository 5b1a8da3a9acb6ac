"""A sweep (one row per grid point: the sizes, params, MACs, FLOPs, bytes read + written,
activation peak; latency and bound with a chip; where each row's figures come from) and its
exact formulas, in table, csv, md and json; a formula alone in table, md and json.

Table and Markdown round figures (``25.56M``); CSV and JSON keep exact integers, and the
formulas' JSON keeps exact integer or ``p/q`` coefficients. Pure functions of the result.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap

from rich import box
from rich.table import Table

from modelmeter.analysis.report_formula import COUNTS
from modelmeter.analysis.sweep import SHORT, Formula, SweepResult, SweepRow
from modelmeter.render._common import convention_text
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import FORMULA_FORMATS, SWEEP_FORMATS, unknown_format
from modelmeter.units import format_bytes, format_count, format_params, format_seconds

HEADER = ("Params", "MACs", "FLOPs", "Bytes", "Act. peak")
CHIP_HEADER = ("Latency", "Bound")


def render_sweep(result: SweepResult, fmt: str = "table", *, width: int = 160) -> str:
    """The sweep in one of ``SWEEP_FORMATS`` (``width`` applies to the table)."""
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(result)
    if fmt == "md":
        return _markdown(result)
    if fmt == "table":
        return _table(result, width)
    raise unknown_format(fmt, SWEEP_FORMATS)


def render_formula(formula: Formula, fmt: str = "table", *, width: int = 160) -> str:
    """A formula alone in one of ``FORMULA_FORMATS``."""
    if fmt == "json":
        return json.dumps(formula.to_dict(), indent=2) + "\n"
    if fmt == "md":  # the sentences as paragraphs, each formula a bullet in code
        head, *body, foot = formula_lines(formula)
        return "\n".join([head, "", *(f"- `{line.strip()}`" for line in body), "", foot]) + "\n"
    if fmt == "table":
        return "\n".join(_wrapped_formula(formula, width)) + "\n"
    raise unknown_format(fmt, FORMULA_FORMATS)


def formula_lines(formula: Formula) -> list[str]:
    """The formulas, then where they were fitted and checked."""
    names = ", ".join(f"{SHORT.get(v, v)} = {v}" for v in formula.variables)
    grid = "; ".join(
        f"{SHORT.get(v, v)} = {', '.join(map(str, axis))}"
        for v, axis in zip(formula.variables, formula.grid)
    )
    checked = "; ".join(
        "(" + ", ".join(f"{SHORT.get(v, v)}={x}" for v, x in zip(formula.variables, p)) + ")"
        for p in formula.checked
    )
    return [
        f"{formula.model}: exact formulas in {names}. FLOPs: {convention_text(formula.convention)}.",
        *("  " + line for line in formula.lines()),
        f"Fitted on {grid}; checked at {checked or 'no point'} (never fitted on); "
        f"{formula.traces} traces. Exact coefficients: -f json.",
    ]


# ---- rows --------------------------------------------------------------------------------------


def _cells(result: SweepResult, row: SweepRow) -> list[str]:
    t = row.totals
    cells = [str(row.point[v]) for v in result.variables]
    cells += [
        format_params(t["params"]),
        format_count(t["macs"]),
        format_count(t["flops"]),
        format_bytes(t["bytes_read"] + t["bytes_written"]),
        format_bytes(t["peak_activation_bytes"]),
    ]
    if result.chip is not None:
        latency = "-" if row.latency_s is None else format_seconds(row.latency_s)
        cells += [latency, row.bound or "-"]
    return cells


def _header(result: SweepResult) -> list[str]:
    return [*result.variables, *HEADER, *(CHIP_HEADER if result.chip else ())]


def _notes(result: SweepResult) -> list[str]:
    traced = sum(r.source == "traced" for r in result.rows)
    out = [
        f"{result.model}: {len(result.rows)} points, {traced} traced, "
        f"{len(result.rows) - traced} from the exact formula ({result.traces} traces in all). "
        f"FLOPs: {convention_text(result.convention)}. Bytes: read + written.",
    ]
    if result.chip:
        out.append(f"Latency and bound: predicted by the roofline model on {result.chip}.")
    out += result.notes
    return out


def _table(result: SweepResult, width: int) -> str:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for i, name in enumerate(_header(result)):
        table.add_column(name, justify="right" if i < len(result.variables) + 5 else "left")
    for row in result.rows:
        table.add_row(*plain(*_cells(result, row)))
    text = to_text(table, width)
    lines = wrap(_notes(result), width)
    if result.formula is not None:
        lines += _wrapped_formula(result.formula, width)
    return text + "\n".join(lines) + "\n"


def _wrapped_formula(formula: Formula, width: int) -> list[str]:
    """The formula lines, the sentences around the formulas wrapped at ``width``."""
    out: list[str] = []
    for line in formula_lines(formula):
        out += [line] if line.startswith("  ") else wrap([line], width)
    return out


def _markdown(result: SweepResult) -> str:
    header = _header(result)
    out = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    out += ["| " + " | ".join(_cells(result, r)) + " |" for r in result.rows]
    out += ["", *_notes(result)]
    if result.formula is not None:
        out += ["", *(f"- `{line}`" for line in result.formula.lines())]
    return "\n".join(out) + "\n"


def _csv(result: SweepResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    chip = ["latency_s", "bound"] if result.chip else []
    w.writerow([*result.variables, *COUNTS, *chip, "source"])
    for r in result.rows:
        extra = [r.latency_s, r.bound] if result.chip else []
        w.writerow([*(r.point[v] for v in result.variables),
                    *(r.totals[c] for c in COUNTS), *extra, r.source])  # fmt: skip
    return buf.getvalue()


def wrap(paragraphs: list[str], width: int) -> list[str]:
    """Each paragraph wrapped at ``width`` (at least 40) columns, words kept whole."""
    out: list[str] = []
    for p in paragraphs:
        out += textwrap.wrap(p, max(width, 40), break_long_words=False, break_on_hyphens=False)
    return out


__all__ = ["formula_lines", "render_formula", "render_sweep"]
