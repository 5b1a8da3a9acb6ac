"""``modelmeter hardware list|show``: the chips modelmeter knows (the chip options other
commands take live in ``commands.options``)."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.hardware_compare import register_compare
from modelmeter.commands.options import (
    TABLE_WIDTH,
    add_output_options,
    add_units_option,
    given,
    with_units,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.errors import InputError
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import HARDWARE_LIST_FORMATS, HARDWARE_SHOW_FORMATS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    h = subparsers.add_parser(
        "hardware",
        parents=[common],
        help="list the hardware database or show one device",
        description="The chips modelmeter knows: dense peaks per dtype, bandwidth, sources.",
    )
    sub = h.add_subparsers(dest="hardware_command", metavar="ACTION", parser_class=type(h))
    ls = sub.add_parser("list", parents=[common], help="every known device, with its sources")
    add_output_options(ls, HARDWARE_LIST_FORMATS, "the list")
    add_units_option(ls)
    ls.set_defaults(handler=with_units(_cmd_list))
    show = sub.add_parser("show", parents=[common], help="every field of one device")
    show.add_argument("name", metavar="NAME|FILE", help="a device name or a hardware TOML file")
    add_output_options(show, HARDWARE_SHOW_FORMATS, "it")
    add_units_option(show)
    show.set_defaults(handler=with_units(_cmd_show))
    register_compare(sub, common)
    h.set_defaults(handler=lambda args: _usage(h))


def _usage(parser: argparse.ArgumentParser) -> int:
    raise InputError(f"say what to do: '{parser.prog} list' or '{parser.prog} show NAME'")


def _check_units(args: argparse.Namespace, honoured: tuple[str, ...]) -> None:
    """Refuse --units with a format of exact byte counts, in one line."""
    if given(args, "units") and args.format not in honoured:
        raise InputError(
            f"--units does not apply to -f {args.format} (it holds exact byte counts); it "
            f"applies to {', '.join(honoured)}"
        )


def _cmd_list(args: argparse.Namespace) -> int:
    from modelmeter.hardware import list_specs
    from modelmeter.render.hardware import render_hardware_list

    _check_units(args, ("table", "md"))
    out = output_path(args.output)
    emit(render_hardware_list(list_specs(), args.format, width=TABLE_WIDTH), out)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from modelmeter.hardware import load_spec
    from modelmeter.render.hardware import render_hardware_show

    _check_units(args, ("table", "md"))
    check_command_outputs(args, [("-o", args.output)], args.name)
    out = output_path(args.output)
    emit(render_hardware_show(load_spec(args.name), args.format, width=TABLE_WIDTH), out)
    return 0
