"""``modelmeter analyze``: count one forward (and backward) pass of a model and report it,
with the roofline's prediction when a chip is given."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelmeter.commands.options import (
    MODEL_HELP,
    PROG,
    add_chip_options,
    add_depth_option,
    add_model_arguments,
    add_output_options,
    check_plot_args,
    input_request,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
    write_plots,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.commands.table_options import add_table_options, table_view, table_width
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import REPORT_FORMATS

DEFAULT_DEPTH = 3


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    a = subparsers.add_parser(
        "analyze",
        parents=[common],
        help="analyse a model and print its report",
        description="Analyse one forward pass of a model and report what it costs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    add_model_arguments(a)
    add_depth_option(
        a,
        DEFAULT_DEPTH,
        f"module levels shown by table, csv and md (default {DEFAULT_DEPTH}; 'all' for "
        "every level); a row at the cut shows its whole subtree",
    )
    add_output_options(a, REPORT_FORMATS, "the report")
    add_table_options(a)
    a.add_argument(
        "--backward",
        action="store_true",
        help="also trace and count the backward pass (one training step); phases are kept apart",
    )
    add_chip_options(a, plots=True)
    a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modelmeter.usecases.analyze import analyze

    request = input_request(args)  # a malformed shape or dtype fails before the model loads
    plots = [("--plot", args.plot), ("--plot-breakdown", args.plot_breakdown)]
    check_command_outputs(args, [("-o", args.output), *plots])
    out = output_path(args.output, args.model)
    spec = spec_from_args(args)  # a bad hardware file fails before the model loads
    check_plot_args(args, spec)
    view = table_view(args, spec is not None)
    with quiet_libraries(args.debug):
        report = analyze(
            args.model,
            request,
            mode=args.mode,
            convention=args.convention,
            backward=args.backward,
        )
    roof = None
    if spec is not None:
        from modelmeter.analysis.roofline import roofline

        roof = roofline(report, spec, tf32=args.tf32)
    if args.format == "table" and out is None and sys.stdout.isatty():
        from rich.console import Console

        from modelmeter.render.table import print_table

        print_table(report, args.depth, Console(), roofline=roof, columns=args.columns, view=view)
    else:
        from modelmeter.render import render_report

        text = render_report(
            report,
            args.format,
            depth=args.depth,
            width=table_width(),
            roofline=roof,
            columns=args.columns,
            view=view,
        )
        emit(text, out)
        missing = report.unsupported
        if missing:
            print(
                f"{PROG}: warning: {len(missing)} unsupported op(s), "
                f"{sum(missing.values())} call(s), NOT COUNTED: {', '.join(missing)}",
                file=sys.stderr,
            )
    if roof is not None:
        warn_unverified(roof.spec)
        write_plots(report, roof, args)
    return 0
