"""``modelmeter analyze``: count one forward (and backward) pass of a model and report it,
with the roofline's prediction when a chip is given."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from modelmeter.commands import feel
from modelmeter.commands.chips import chip_names
from modelmeter.commands.fusion import add_fuse_option, check_fuse_args, fusion_text
from modelmeter.commands.options import (
    DEFAULT_DEPTH,
    MODEL_HELP,
    PROG,
    TABLE_WIDTH,
    add_chip_options,
    add_depth_option,
    add_model_arguments,
    add_output_options,
    add_units_option,
    input_request,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
    with_units,
)
from modelmeter.commands.paths import check_command_outputs, model_files
from modelmeter.commands.plot_options import add_plot_options, check_plot_args, write_plots
from modelmeter.commands.pricing_options import chip_pricing, pricing
from modelmeter.commands.storage_options import add_storage_options, storage_kwargs
from modelmeter.commands.sweep_options import add_sweep_options, wants_sweep
from modelmeter.commands.table_options import (
    add_table_options,
    check_view_options,
    table_view,
    table_width,
)
from modelmeter.errors import InputError, ModelmeterError, first_line
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import COMPARISON_FORMATS, REPORT_FORMATS
from modelmeter.storage import Pricing

# -f latex is the paper table's (one row per MODEL), even for one model
ANALYZE_FORMATS = (*REPORT_FORMATS, *(f for f in COMPARISON_FORMATS if f not in REPORT_FORMATS))


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    a = subparsers.add_parser(
        "analyze",
        parents=[common],
        help="analyse a model and print its report",
        description="Analyse one forward pass of a model and report what it costs. With "
        "several models, one row each (the paper table: params, MACs, FLOPs, bytes, activation "
        "peak; latency and bound with a chip) in table, csv, md, latex or json; a model that "
        "fails gets one error line, the others are still shown, and the exit code is 2.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    add_model_arguments(a, several=True)
    add_depth_option(
        a,
        f"module levels shown by table, csv and md (default {DEFAULT_DEPTH}; 'all' for "
        "every level); a row at the cut shows its whole subtree",
    )
    add_output_options(a, ANALYZE_FORMATS, "the report")
    add_table_options(a)
    a.add_argument(
        "--backward",
        action="store_true",
        help="also trace and count the backward pass (one training step); phases are kept apart",
    )
    add_storage_options(a)
    add_plot_options(add_chip_options(a))
    add_fuse_option(a)
    add_units_option(a)
    add_sweep_options(a)
    a.set_defaults(handler=with_units(run))


def run(args: argparse.Namespace) -> int:
    if wants_sweep(args):
        from modelmeter.commands.sweep_options import run_sweep

        return run_sweep(args)
    chips = chip_names(args)
    if chips is not None:  # --hardware A,B,C: one model on several chips
        from modelmeter.commands.chips import run_chips

        return run_chips(args, chips)
    if args.no_formula:
        raise InputError("--no-formula goes with --sweep")
    models = list(args.model)
    if len(models) > 1 and args.format not in COMPARISON_FORMATS:  # -f html: one model's page
        raise InputError(
            f"-f {args.format} is one model's report: give one model (several models make the "
            f"paper table: {', '.join(COMPARISON_FORMATS)})"
        )
    paper = not (len(models) == 1 and args.format in REPORT_FORMATS)
    check_view_options(args, paper=paper)  # an option the output cannot honour: one line
    if not paper:
        args.model = models[0]
        return run_one(args)
    return run_several(args, models)


def run_several(args: argparse.Namespace, models: list[str]) -> int:
    """The paper table: each model analysed in turn (one process), one row each."""
    from modelmeter.analysis.comparison import Comparison, comparison_row
    from modelmeter.analysis.roofline import roofline
    from modelmeter.render.compare import render_comparison
    from modelmeter.usecases.analyze import analyze

    if args.plot or args.plot_breakdown:
        raise InputError(
            "--plot and --plot-breakdown draw one model's report: give one MODEL (and no -f latex)"
        )
    if args.fuse is not None:
        raise InputError("--fuse takes one MODEL (and no -f latex)")
    request = input_request(args)  # applies to every model; fails before any model loads
    args.model = None
    check_command_outputs(args, [("-o", args.output)], *(f for m in models for f in model_files(m)))
    out = output_path(args.output)
    spec = spec_from_args(args)
    if args.sort == "latency" and spec is None:
        raise InputError("--sort latency needs a chip: give --hardware or --peak")
    rows, failed = [], 0
    with progress_bar(args.quiet, "analysing") as progress:  # one bar: model n of N
        for done, label in enumerate(models):
            if progress:
                progress(f"analysing {label}", done, len(models))
            try:
                with quiet_libraries(args.debug):
                    report = analyze(
                        label, request, mode=args.mode, convention=args.convention,
                        backward=args.backward, **storage_kwargs(args),
                    )
                roof = None if spec is None else roofline(report, spec, **pricing(args))
            except ModelmeterError as e:
                print(f"{PROG}: error: {label}: {first_line(e)}", file=sys.stderr)
                failed += 1
                continue
            rows.append(comparison_row(label, report, roof))
            if report.unsupported:
                print(
                    f"{PROG}: warning: {label}: {len(report.unsupported)} unsupported op(s) NOT "
                    f"COUNTED: {', '.join(report.unsupported)}",
                    file=sys.stderr,
                )
    if rows:
        if args.sort is not None:  # models ordered by the figure, largest first
            rows.sort(key=lambda r: -(r.sort_value(args.sort) or 0))
        chip = None if spec is None else spec.name
        # the module table's rule: a terminal's width, else $COLUMNS, else TABLE_WIDTH
        tty = out is None and sys.stdout.isatty()
        width = shutil.get_terminal_size((TABLE_WIDTH, 24)).columns if tty else table_width()
        comparison = Comparison(rows=rows, convention=args.convention, chip=chip,
                                storage=Pricing.of(args.weights, args.kv),
                                **chip_pricing(spec, args))  # fmt: skip
        emit(render_comparison(comparison, args.format, width=width), out)
    if spec is not None:
        warn_unverified(spec)
    return 2 if failed else 0


def run_one(args: argparse.Namespace) -> int:
    """One model's report, as before several models were allowed."""
    from modelmeter.usecases.analyze import analyze

    request = input_request(args)  # a malformed shape or dtype fails before the model loads
    plots = [("--plot", args.plot), ("--plot-breakdown", args.plot_breakdown)]
    check_command_outputs(args, [("-o", args.output), *plots])
    out = output_path(args.output)
    spec = spec_from_args(args)  # a bad hardware file fails before the model loads
    check_plot_args(args, spec)
    rules = check_fuse_args(args, spec)
    view = table_view(args, spec is not None)
    with quiet_libraries(args.debug), progress_bar(args.quiet, "analysing"):
        report = analyze(
            args.model,
            request,
            mode=args.mode,
            convention=args.convention,
            backward=args.backward,
            **storage_kwargs(args),
        )
    if rules is not None:  # --fuse: the what-if instead of the report
        emit(fusion_text(args, report, spec, rules), out)
        warn_unverified(spec)
        return 0
    roof = None
    if spec is not None:
        from modelmeter.analysis.roofline import roofline

        roof = roofline(report, spec, **pricing(args))
    console = feel.stdout_console() if args.format == "table" and out is None else None
    if console is not None and console.is_terminal:  # colour (none with NO_COLOR), fitted
        from modelmeter.render.table import print_table

        print_table(report, args.depth, console, roofline=roof, columns=args.columns, view=view)
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
        if roof.weights is not None and roof.weights.note():  # weights over the chip's memory
            print(f"{PROG}: warning: {roof.weights.note()}", file=sys.stderr)
        write_plots(report, roof, args)
    return 0
