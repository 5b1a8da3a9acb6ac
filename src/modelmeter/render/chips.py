"""One model on several chips side by side (``analyze --hardware A,B,C``): per chip the
predicted latency, bound, attainable utilization, throughput and whether the weights fit,
in table, md, csv and json; and a bar chart of the latencies. Pure functions of the result."""

from __future__ import annotations

import csv
import io
import json
import textwrap

from rich import box
from rich.table import Table

from modelmeter.analysis.chips import ChipComparison, ChipRow
from modelmeter.render._common import convention_text
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import CHIPS_FORMATS, unknown_format
from modelmeter.units import format_bytes, format_count, format_percent, format_seconds

HEADER = ("Chip", "Latency", "vs fastest", "Bound", "Utilization", "Throughput", "Weights fit")
COLORS = {"compute": "#1f77b4", "memory": "#ff7f0e", "overhead": "#7f7f7f"}


def render_chips(c: ChipComparison, fmt: str = "table", *, width: int = 160) -> str:
    """The comparison in one of ``CHIPS_FORMATS``."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2) + "\n"
    if fmt == "csv":
        return _csv(c)
    if fmt == "md":
        header = "| " + " | ".join(HEADER) + " |\n|---|" + "---:|" * 2 + "---|" + "---:|" * 2 + "---|\n"
        body = "".join("| " + " | ".join(_cells(c, r)) + " |\n" for r in c.rows)
        return header + body + "\n" + "\n".join(_notes(c)) + "\n"
    if fmt == "table":
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in HEADER:
            table.add_column(name, justify="left" if name in ("Chip", "Bound", "Weights fit") else "right")
        for r in c.rows:
            table.add_row(*plain(*_cells(c, r)))
        return to_text(table, width) + "\n".join(wrap(_notes(c), width)) + "\n"
    raise unknown_format(fmt, CHIPS_FORMATS)


def _fit_text(r: ChipRow) -> str:
    if r.weights_fit is None:
        return "-" if r.weight_bytes is None else f"? ({format_bytes(r.weight_bytes)}, capacity unknown)"
    assert r.weight_bytes is not None and r.capacity_bytes is not None
    word = "yes" if r.weights_fit else "NO"
    return f"{word} ({format_bytes(r.weight_bytes)} of {format_bytes(r.capacity_bytes)})"


def _cells(c: ChipComparison, r: ChipRow) -> list[str]:
    fastest = c.fastest().latency_s
    ratio = r.latency_s / fastest if fastest else None
    throughput = "-" if r.throughput_per_s is None else f"{format_count(r.throughput_per_s)}/s"
    return [
        r.chip + ("" if r.verified else " *"),
        format_seconds(r.latency_s),
        "-" if ratio is None else f"{ratio:.2f}x",
        r.bound,
        format_percent(r.utilization),
        throughput,
        _fit_text(r),
    ]


def _notes(c: ChipComparison) -> list[str]:
    batch = f" at batch {c.batch}" if c.batch is not None else ""
    out = [
        f"{c.model}{batch}: latency and bound predicted by the roofline model on each chip (not "
        f"measured). Utilization: FLOPs per predicted second over the chip's peak. Throughput: "
        f"inputs per second. Weights fit: the parameters alone against the chip's memory. "
        f"FLOPs: {convention_text(c.convention)}.",
    ]
    if any(not r.verified for r in c.rows):
        out.append("* the chip has UNVERIFIED figures ('modelmeter hardware show NAME').")
    return out


def _csv(c: ChipComparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = list(c.rows[0].to_dict()) if c.rows else []
    w.writerow(keys)
    for r in c.rows:
        w.writerow(r.to_dict().values())
    return buf.getvalue()


def save_chips_plot(c: ChipComparison, path: str) -> None:
    """A bar per chip of its predicted latency, coloured by bound (PNG, PDF or SVG)."""
    from modelmeter.render.plots import new_figure, save_figure

    fig = new_figure(9, 1.2 + 0.45 * len(c.rows))
    ax = fig.add_subplot()
    rows = list(reversed(c.rows))
    ax.barh([r.chip for r in rows], [r.latency_s for r in rows],
            color=[COLORS.get(r.bound, "#7f7f7f") for r in rows])  # fmt: skip
    for i, r in enumerate(rows):
        ax.text(r.latency_s, i, " " + format_seconds(r.latency_s), va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("predicted latency (s, log scale)")
    ax.set_title(f"{c.model}: predicted latency per chip")
    from matplotlib.patches import Patch

    bounds = sorted({r.bound for r in rows})
    ax.legend(handles=[Patch(color=COLORS.get(b, "#7f7f7f"), label=f"{b}-bound") for b in bounds],
              fontsize=8, loc="lower right")  # fmt: skip
    ax.margins(x=0.25)
    save_figure(fig, path)


def wrap(paragraphs: list[str], width: int) -> list[str]:
    """Each paragraph wrapped at ``width`` (at least 40) columns, words kept whole."""
    out: list[str] = []
    for p in paragraphs:
        out += textwrap.wrap(p, max(width, 40), break_long_words=False, break_on_hyphens=False)
    return out


__all__ = ["render_chips", "save_chips_plot"]
