"""``modelmeter hardware compare A B ...``: chips' figures side by side, as ratios to the
first (its parser and handler; ``commands.hardware`` registers it)."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.errors import InputError

MAX_CHIPS = 64


def register_compare(sub: Any, common: argparse.ArgumentParser) -> None:
    from modelmeter.commands.options import add_output_options
    from modelmeter.render.formats import HARDWARE_COMPARE_FORMATS

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="chips side by side: peaks, bandwidth, memory, ridge point, ratios to the first",
        description="Chips side by side, each figure as a ratio to the first chip's. "
        "Example: modelmeter hardware compare h100-sxm a100-sxm-80gb l4",
    )
    p.add_argument("names", nargs="+", metavar="NAME|FILE", help="devices or hardware TOML files")
    add_output_options(p, HARDWARE_COMPARE_FORMATS, "the comparison")
    p.set_defaults(handler=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from modelmeter.commands.options import TABLE_WIDTH
    from modelmeter.commands.paths import check_command_outputs
    from modelmeter.hardware import load_spec
    from modelmeter.render.emit import emit, output_path
    from modelmeter.render.hardware_compare import render_hardware_compare

    names = list(dict.fromkeys(n.strip() for n in args.names if n.strip()))
    if not names:
        raise InputError("hardware compare: give at least one device")
    if len(names) > MAX_CHIPS:
        raise InputError(f"hardware compare: at most {MAX_CHIPS} devices")
    check_command_outputs(args, [("-o", args.output)], *names)
    out = output_path(args.output)
    specs = [load_spec(n) for n in names]
    emit(render_hardware_compare(specs, args.format, width=TABLE_WIDTH), out)
    return 0


__all__ = ["register_compare"]
