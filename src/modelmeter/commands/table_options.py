"""The options of the module table, shared by the commands that print one: ``--columns``,
``--sort``, ``--top``, ``--no-collapse``, and the width of a table written to a pipe or file;
and the one rule of which output honours which of them (``HONOURED``, ``check_view_options``):
an option the output cannot honour is refused with one line, never silently ignored."""

from __future__ import annotations

import argparse
import os

from modelmeter.commands.options import TABLE_WIDTH, count, given
from modelmeter.errors import InputError
from modelmeter.render.table_layout import column_names, parse_columns
from modelmeter.render.table_rows import SORT_KEYS, TableView


def columns_arg(text: str) -> tuple[str, ...]:
    """``--columns params,macs,flops``: the table's columns (an unknown name lists the valid)."""
    try:
        return parse_columns(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def table_width() -> int:
    """The width of a table written to a pipe or file: $COLUMNS when set, else TABLE_WIDTH."""
    text = os.environ.get("COLUMNS", "")
    return int(text) if text.isdigit() and int(text) >= 20 else TABLE_WIDTH


def add_table_options(p: argparse.ArgumentParser) -> None:
    """``--columns``, ``--sort KEY``, ``--top N`` and ``--no-collapse``."""
    p.add_argument(
        "--columns",
        type=columns_arg,
        metavar="LIST",
        help="table, csv, md: the columns, comma-separated, from: "
        + ",".join(column_names())
        + " (the module's name is always shown; csv and md keep the same figures; without it "
        "the table drops low-priority columns to fit the width, $COLUMNS in a pipe or file, "
        "and never cuts a number)",
    )
    p.add_argument(
        "--sort",
        choices=SORT_KEYS,
        help="table: order sibling modules by their total of this cost, largest first "
        "(bytes: read + written; latency needs a chip)",
    )
    p.add_argument(
        "--top",
        type=count(1, "--top"),
        metavar="N",
        help="table: instead of the tree, a flat list of the N modules with the highest OWN "
        "cost at --depth (a row less the rows shown below it, so the list adds up to the "
        "model), by --sort (default macs)",
    )
    p.add_argument(
        "--no-collapse",
        action="store_true",
        help="table: show identical sibling blocks one by one; by default they are one row "
        "'name_0..11 ×12' whose figures are the SUM over the blocks",
    )


def table_view(args: argparse.Namespace, chip: bool) -> TableView:
    """The TableView of ``--sort/--top/--no-collapse`` (checked before the model loads)."""
    if args.sort == "latency" and not chip:
        raise InputError("--sort latency needs a chip: give --hardware or --peak")
    return TableView(collapse=not args.no_collapse, sort=args.sort, top=args.top)


# option (its flag) -> the formats of one model's report that honour it. The paper table
# (several models, or -f latex) honours --sort (models ordered) and --units (table, md, latex).
HONOURED: dict[str, tuple[str, ...]] = {
    "--depth": ("table", "csv", "md"),
    "--sort": ("table", "csv", "md"),
    "--top": ("table", "csv", "md"),
    "--no-collapse": ("table", "csv", "md", "html"),  # html: the chart's points
    "--columns": ("table", "csv", "md"),
    "--units": ("table", "md", "html"),
}
PAPER_HONOURED: dict[str, tuple[str, ...]] = {
    "--sort": ("table", "csv", "md", "latex", "json"),
    "--units": ("table", "md", "latex"),
}
WHY = {
    "json": "json holds every module with exact figures",
    "csv": "csv holds every field, with exact byte counts",
    "latex": "latex is the paper table",
    "md": "md shows every column",
    "html": "the html page holds every module; it folds, filters and sorts them itself",
}


def given_view_options(args: argparse.Namespace) -> list[str]:
    """The module-table options on the command line (those whose default can also be
    given, --depth and --units, are remembered by ``options.Given``)."""
    out = []
    if given(args, "depth"):
        out.append("--depth")
    values = (("--sort", args.sort), ("--top", args.top), ("--columns", args.columns))
    out += [flag for flag, value in values if value is not None]
    if args.no_collapse:
        out.append("--no-collapse")
    if given(args, "units"):
        out.append("--units")
    return out


def check_view_options(args: argparse.Namespace, *, paper: bool) -> None:
    """Refuse, in one line, an option the output asked for cannot honour (see HONOURED)."""
    fmt = args.format
    charts = getattr(args, "plot", None) or getattr(args, "plot_breakdown", None)
    for flag in given_view_options(args):
        if flag == "--no-collapse" and charts and not paper:
            continue  # the charts honour it, whatever the format
        if paper:
            if fmt not in PAPER_HONOURED.get(flag, ()):
                what = (
                    f"-f {fmt} (exact figures); it applies to {', '.join(PAPER_HONOURED[flag])}"
                    if flag in PAPER_HONOURED
                    else "the paper table (several models, or -f latex): one row per model"
                )
                raise InputError(f"{flag} does not apply to {what}")
        elif fmt not in HONOURED[flag]:
            shown = ", ".join(HONOURED[flag])
            raise InputError(
                f"{flag} does not apply to -f {fmt} ({WHY[fmt]}); it applies to {shown}"
            )
