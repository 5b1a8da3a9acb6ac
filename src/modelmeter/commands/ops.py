"""``modelmeter ops``: the operators modelmeter counts and those it declares zero-cost."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.options import TABLE_WIDTH, add_output_options
from modelmeter.commands.paths import check_command_outputs
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import OPS_FORMATS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    o = subparsers.add_parser(
        "ops",
        parents=[common],
        help="list the supported operators",
        description="List the operators modelmeter counts and those it declares zero-cost.",
    )
    add_output_options(o, OPS_FORMATS, "the list")
    o.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modelmeter.render.ops import render_ops

    check_command_outputs(args, [("-o", args.output)])
    out = output_path(args.output)
    emit(render_ops(args.format, width=TABLE_WIDTH), out)
    return 0
