"""The options of the module table, shared by the commands that print one: ``--columns``,
``--sort``, ``--top``, ``--no-collapse``, and the width of a table written to a pipe or file."""

from __future__ import annotations

import argparse
import os

from modelmeter.commands.options import TABLE_WIDTH, count
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
        help="table: the columns, comma-separated, from: "
        + ",".join(column_names())
        + " (Module is always shown; without it the table drops low-priority columns to fit "
        "the width, $COLUMNS in a pipe or file, and never cuts a number)",
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
