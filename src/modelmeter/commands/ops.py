"""``modelmeter ops``: the operators modelmeter counts and those it declares zero-cost."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.options import TABLE_WIDTH, add_output_options
from modelmeter.commands.paths import check_command_outputs
from modelmeter.errors import InputError
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import OPS_FORMATS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    o = subparsers.add_parser(
        "ops",
        parents=[common],
        help="list the supported operators",
        description="List the operators modelmeter counts and those it declares zero-cost; "
        "with TEXT, only those whose name, family or targets contain it (e.g. 'conv').",
    )
    o.add_argument(
        "pattern",
        nargs="?",
        metavar="TEXT",
        help="show only operators whose name, family or targets contain TEXT (any case)",
    )
    add_output_options(o, OPS_FORMATS, "the list")
    o.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modelmeter.render.ops import matching, render_ops

    check_command_outputs(args, [("-o", args.output)])
    out = output_path(args.output)
    counted, zero = matching(args.pattern)
    if args.pattern and not counted and not any(zero.values()):
        raise InputError(f"no operator matches {args.pattern!r} (run 'modelmeter ops' for all)")
    emit(render_ops(args.format, counted, zero, width=TABLE_WIDTH), out)
    return 0
