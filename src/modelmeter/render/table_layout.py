"""Fitting the module table to a width without ever cutting a number.

The table's columns have a priority: when the table does not fit, headers are shortened
first, then module names are shortened from the middle (the tree guides and the last part of
the name stay), then the lower-priority columns are dropped one by one (output shape, calls,
bytes written, bytes read, % FLOPs, ...). Params, MACs and FLOPs are never dropped and never
cut; the user can choose the columns (``--columns``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from modelmeter.errors import InputError

# column header -> (name for --columns, short header)
COLUMN_KEYS: dict[str, tuple[str, str]] = {
    "Module": ("module", "Module"),
    "Type": ("type", "Type"),
    "Calls": ("calls", "Calls"),
    "Params": ("params", "Params"),
    "MACs": ("macs", "MACs"),
    "Self MACs": ("self_macs", "Self MACs"),
    "FLOPs": ("flops", "FLOPs"),
    "Bytes read": ("read", "Read"),
    "Bytes written": ("written", "Written"),
    "Output shape": ("shape", "Shape"),
    "% FLOPs": ("pct", "%FLOPs"),
    "Latency": ("latency", "Latency"),
    "Bound": ("bound", "Bound"),
    "% time": ("time", "%time"),
}
# Dropped first to last when the table is too wide; columns not listed are never dropped.
DROP_ORDER = (
    "Output shape",
    "Calls",
    "Bytes written",
    "Bytes read",
    "% FLOPs",
    "Bound",
    "Type",
    "% time",
    "Self MACs",
)
LOW_PRIORITY = 4  # the first 4 of DROP_ORDER go before any module name is shortened
MODULE_SHORT = 24  # module names are first shortened to this many characters, then to MODULE_MIN
MODULE_MIN = 10
TYPE_SHORT = 18  # type names are shortened (from the middle) with the module names
GUIDES = "│├└─ "


def column_names() -> list[str]:
    """The names ``--columns`` accepts, in table order."""
    return [key for key, _ in COLUMN_KEYS.values()]


def parse_columns(text: str) -> tuple[str, ...]:
    """``params,macs,flops`` -> the column keys; an unknown name is an InputError naming the
    valid ones."""
    wanted = tuple(w.strip().lower() for w in text.split(",") if w.strip())
    valid = column_names()
    bad = [w for w in wanted if w not in valid]
    if bad or not wanted:
        raise InputError(
            f"unknown column {', '.join(bad) or repr(text)}: choose from {','.join(valid)}"
        )
    return wanted


def shorten_name(text: str, width: int) -> str:
    """``├─ encoder.layers.encoder_layer_11`` shortened from the middle to ``width``: the tree
    guides and the last part of the name are kept while they fit."""
    if len(text) <= width:
        return text
    rest = text.lstrip(GUIDES)
    lead = text[: len(text) - len(rest)]
    room = width - len(lead)
    if room < 2:  # no room left beside the guides: keep the name's end
        return "…" + text[-(width - 1) :] if width > 1 else "…"
    last = re.split(r"(?<!\.)\.(?!\.)", rest)[-1]  # "a.b_0..11 ×12" -> "b_0..11 ×12"
    head = room - len(last) - 1
    if head >= 1 and last != rest:
        return lead + rest[:head] + "…" + last
    return lead + rest[: (room - 1) // 2] + "…" + rest[len(rest) - (room - 1 - (room - 1) // 2) :]


@dataclass(frozen=True)
class Layout:
    headers: tuple[str, ...]  # the headers shown (short ones when space was short)
    columns: tuple[str, ...]  # the full header names of the columns shown
    rows: list[tuple[str, ...]]  # the cells shown (module names possibly shortened)


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Characters a rounded rich table with one space of padding needs."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    return sum(widths) + 3 * len(widths) + 1


def fit(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    chosen: Sequence[str] | None = None,
) -> Layout:
    """Choose the columns, headers and module names so the table fits in ``width``."""
    keep = [c for c in columns if chosen is None or c == "Module" or COLUMN_KEYS[c][0] in chosen]
    short = False
    name_width: int | None = None

    def build() -> Layout:
        idx = [list(columns).index(c) for c in keep]
        heads = tuple(COLUMN_KEYS[c][1] if short else c for c in keep)
        body = []
        for row in rows:
            cells = [row[i] for i in idx]
            if name_width is not None:
                cells[0] = shorten_name(cells[0], name_width)
                if "Type" in keep:
                    k = keep.index("Type")
                    cells[k] = shorten_name(cells[k], TYPE_SHORT)
            body.append(tuple(cells))
        return Layout(heads, tuple(keep), body)

    def fits() -> bool:
        layout = build()
        return table_width(layout.headers, layout.rows) <= width

    if fits():
        return build()
    short = True
    for step, col in enumerate(DROP_ORDER):
        if step == LOW_PRIORITY and not fits():  # low-priority columns gone: shorten names
            name_width = MODULE_SHORT
        if fits():
            return build()
        if col in keep and chosen is None:
            keep.remove(col)
    if fits():
        return build()
    name_width = MODULE_MIN
    return build()
