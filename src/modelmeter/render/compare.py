"""The paper table: several models side by side, one row each (params, MACs, FLOPs, bytes read
plus written, activation peak; predicted latency and bound with a chip), with the convention
and each model's inputs stated once below the rows.

Table, Markdown and LaTeX show rounded figures (``25.56M``); CSV and JSON exact integers and
seconds. A pure function of a :class:`~modelmeter.analysis.comparison.Comparison`.
"""

from __future__ import annotations

import csv
import io
import json

from modelmeter.analysis.comparison import Comparison, ComparisonRow
from modelmeter.render._common import format_shape
from modelmeter.render.formats import COMPARISON_FORMATS, unknown_format
from modelmeter.report import InputSpec
from modelmeter.units import format_bytes, format_count, format_seconds

HEADER = ("Model", "Params", "MACs", "FLOPs", "Bytes", "Act. peak")
CHIP_HEADER = ("Latency", "Bound")
CSV_HEADER = (
    "model",
    "inputs",
    "params",
    "macs",
    "flops",
    "bytes_read",
    "bytes_written",
    "peak_activation_bytes",
)
CSV_CHIP_HEADER = ("latency_s", "bound")
MIN_NAME = 12
CONVENTIONS = {
    "exact": "every multiply and every add counted",
    "2mac": "2 x MACs for sum-of-products ops, bias adds ignored",
}
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "µ": r"$\mu$",
}


def render_comparison(comparison: Comparison, fmt: str = "table", *, width: int = 160) -> str:
    """The comparison in one of ``COMPARISON_FORMATS`` (``width`` applies to the table)."""
    if fmt == "table":
        return _table(comparison, width)
    if fmt == "csv":
        return _csv(comparison)
    if fmt == "md":
        return _markdown(comparison)
    if fmt == "latex":
        return _latex(comparison)
    if fmt == "json":
        return json.dumps(comparison.to_dict(), indent=2) + "\n"
    raise unknown_format(fmt, COMPARISON_FORMATS)


# ---- shared ------------------------------------------------------------------------------------


def _header(c: Comparison) -> tuple[str, ...]:
    return HEADER + (CHIP_HEADER if c.chip is not None else ())


def _cells(c: Comparison, r: ComparisonRow, digits: int = 2) -> list[str]:
    """The rounded figures of a row (without its name), ``digits`` decimals."""
    cells = [
        format_count(r.params, digits),
        format_count(r.macs, digits),
        format_count(r.flops, digits),
        format_bytes(r.bytes_moved, digits),
        format_bytes(r.peak_activation_bytes, digits),
    ]
    if c.chip is not None:
        latency = "-" if r.latency_s is None else format_seconds(r.latency_s, digits)
        cells += [latency, r.bound or "-"]
    return cells


def inputs_text(inputs: list[InputSpec]) -> str:
    """``1x3x224x224 float32`` (``name=`` before keyword inputs; ``, `` between inputs)."""
    parts = []
    for spec in inputs:
        text = f"{format_shape(spec.shape)} {spec.dtype}"
        parts.append(f"{spec.name}={text}" if spec.name else text)
    return ", ".join(parts) or "-"


def notes(c: Comparison) -> list[str]:
    """What the figures mean, stated once: the convention, the chip and each model's inputs."""
    out = [
        f"FLOPs: {c.convention}, {CONVENTIONS.get(c.convention, c.convention)}. MACs: multiply-accumulates. Bytes: read + "
        "written by every op. Act. peak: the most activation memory live at once (inputs "
        "included).",
    ]
    if c.chip is not None:
        how = "" if c.runtime is None else f", {c.runtime} runtime, {c.figures} figures"
        out.append(
            f"Latency and bound: predicted by the roofline model on {c.chip}{how} "
            "(not measured); bound is what takes most of the predicted time."
        )
    if c.storage is not None:
        out.append(f"Bytes at the storage formats {c.storage.label()} (counts unchanged).")
    out.append("Inputs: " + "; ".join(f"{r.model}: {inputs_text(r.inputs)}" for r in c.rows) + ".")
    return out


# ---- table -------------------------------------------------------------------------------------


def _strip_source(name: str) -> str:
    """``resnet50`` of ``torchvision:resnet50``, ``file.py:F`` of ``dir/file.py:F``."""
    source, sep, rest = name.partition(":")
    if sep and rest and "/" not in source and "." not in source:
        return rest
    return name.rsplit("/", 1)[1] if "/" in name else name


def short_name(name: str, limit: int) -> str:
    """``name`` in at most ``limit`` characters: whole, else without its source prefix
    (``torchvision:``, a file's folder), else cut from the middle with ``…``."""
    if len(name) > limit:
        name = _strip_source(name)
    if len(name) <= limit:
        return name
    head = limit // 2
    tail = limit - 1 - head
    return name[:head] + "…" + (name[-tail:] if tail else "")


def _table(c: Comparison, width: int) -> str:
    """Numbers are never cut: when the lines are too wide, the names lose their source
    prefix (all of them), then the figures a decimal, then the names their middle (to
    MIN_NAME), then the columns of DROP_ORDER go one by one (named under the table); Model,
    Params, MACs, FLOPs and Latency always stay, and a line longer than ``width`` is left
    long rather than cut."""
    header = _header(c)
    body = {d: [_cells(c, r, d) for r in c.rows] for d in (2, 1)}
    dropped: list[str] = []
    for strip, digits, drop in _attempts(header):
        dropped = drop
        names = [_strip_source(r.model) if strip else r.model for r in c.rows]
        lines = _lines(header, names, body[digits], width, drop)
        if max(len(x) for x in lines) <= width:
            break
    tail = notes(c)
    if dropped:
        tail.append(
            f"Not shown at {width} columns: {', '.join(dropped)} (a wider terminal, $COLUMNS "
            "or -f csv/md shows them)."
        )
    return "\n".join(lines + [""] + _wrap(tail, width)) + "\n"


DROP_ORDER = ("Bound", "Act. peak", "Bytes")  # the paper table's columns dropped, in order


def _attempts(header: tuple[str, ...]) -> list[tuple[bool, int, list[str]]]:
    """(strip the source, decimals, columns dropped) to try, in order."""
    out = [(False, 2, []), (True, 2, []), (True, 1, [])]
    drop: list[str] = []
    for col in DROP_ORDER:
        if col in header:
            drop = [*drop, col]
            out.append((True, 1, drop))
    return out


def _lines(
    header: tuple[str, ...],
    names: list[str],
    body: list[list[str]],
    width: int,
    drop: list[str],
) -> list[str]:
    keep = [i for i, h in enumerate(header[1:]) if h not in drop]
    heads = [header[0]] + [header[1 + i] for i in keep]
    body = [[b[i] for i in keep] for b in body]
    widths = [max([len(heads[k + 1])] + [len(b[k]) for b in body]) for k in range(len(keep))]
    room = max(MIN_NAME, width - sum(w + 2 for w in widths))
    names = [short_name(n, room) for n in names]
    name_w = max([len(heads[0])] + [len(n) for n in names])
    left = {k for k, i in enumerate(keep) if header[1 + i] == "Bound"}

    def line(name: str, cells: list[str]) -> str:
        parts = [name.ljust(name_w)]
        for k, cell in enumerate(cells):
            parts.append(cell.ljust(widths[k]) if k in left else cell.rjust(widths[k]))
        return "  ".join(parts).rstrip()

    out = [line(heads[0], heads[1:])]
    out.append("-" * len(out[0]))
    return out + [line(n, b) for n, b in zip(names, body, strict=True)]


def _wrap(paragraphs: list[str], width: int) -> list[str]:
    import textwrap

    out: list[str] = []
    for p in paragraphs:
        out += textwrap.wrap(p, max(width, 40), break_long_words=False, break_on_hyphens=False)
    return out


# ---- csv, markdown, latex ----------------------------------------------------------------------


def _csv(c: Comparison) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER + (CSV_CHIP_HEADER if c.chip is not None else ()))
    for r in c.rows:
        row: list[object] = [
            r.model,
            inputs_text(r.inputs),
            r.params,
            r.macs,
            r.flops,
            r.bytes_read,
            r.bytes_written,
            r.peak_activation_bytes,
        ]
        if c.chip is not None:
            row += [r.latency_s, r.bound]
        writer.writerow(row)
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(c: Comparison) -> str:
    header = _header(c)
    aligns = ["---"] + ["---:"] * (len(header) - 1)
    if c.chip is not None:
        aligns[-1] = "---"
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    for r in c.rows:
        out.append("| " + " | ".join(_md_cell(x) for x in [r.model, *_cells(c, r)]) + " |")
    return "\n".join(out + [""] + notes(c)) + "\n"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _latex(c: Comparison) -> str:
    header = _header(c)
    cols = "l" + "r" * (len(header) - 1)
    if c.chip is not None:
        cols = cols[:-1] + "l"
    out = [
        "% modelmeter paper table (needs \\usepackage{booktabs})",
        "\\begin{table}[t]",
        "\\centering",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(latex_escape(h).replace(". ", ".\\ ") for h in header) + " \\\\",
        "\\midrule",
    ]
    for r in c.rows:
        cells = [latex_escape(x) for x in [r.model, *_cells(c, r)]]
        cells = [x[:-3] + r" $\mu$s" if x.endswith(" us") else x for x in cells]
        out.append(" & ".join(cells) + " \\\\")
    out += [
        "\\bottomrule",
        "\\end{tabular}",
        "\\caption{" + latex_escape(" ".join(notes(c))) + "}",
        "\\end{table}",
    ]
    return "\n".join(out) + "\n"
