"""``modelmeter utilization MODEL --hardware NAME --latency 12ms``: the source document's
utilization, (operations / latency) / peak, MAC-based (2 x MACs) and FLOP-based."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from modelmeter.commands.options import (
    MODEL_HELP,
    add_chip_options,
    add_model_arguments,
    add_output_options,
    input_request,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.commands.pricing_options import pricing
from modelmeter.errors import InputError
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import UTILIZATION_FORMATS

if TYPE_CHECKING:
    from modelmeter.inputs import InputRequest
    from modelmeter.report import Report


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    u = subparsers.add_parser(
        "utilization",
        parents=[common],
        help="utilization of a chip at a measured latency",
        description="The source document's utilization: (operations / latency) / peak, "
        "MAC-based (one MAC = 2 ops) and FLOP-based, with the roofline's prediction beside it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP + "\n  report.json               a saved 'analyze --format json' report",
    )
    add_model_arguments(u)
    u.add_argument(
        "--latency",
        "-t",
        required=True,
        metavar="TIME",
        help="the measured latency of one forward pass at the analysed batch, with its unit "
        "(s, ms, us, ns), e.g. 12ms",
    )
    add_output_options(u, UTILIZATION_FORMATS)
    add_chip_options(u)
    u.set_defaults(handler=run)


def _latency(text: str) -> float:
    from modelmeter.hardware import parse_seconds
    from modelmeter.hardware.quantities import figure_rule

    try:
        value = parse_seconds(text)
    except ValueError as e:
        raise InputError(f"--latency: {e}") from None
    if not text.strip().lower().endswith("s"):  # a bare 12 would silently be 12 seconds
        raise InputError(
            f"--latency needs a unit: write e.g. {text.strip()}ms (units s, ms, us, ns; "
            f"got {text!r})"
        )
    if not 0 < value < float("inf"):
        raise InputError(f"--latency must be a positive time (got {text!r})")
    rule = figure_rule(value, "seconds")
    if rule:
        raise InputError(f"--latency: {text!r} {rule}")
    return value


def _load_report(args: argparse.Namespace, request: InputRequest) -> Report:
    if args.model.endswith(".json"):
        from modelmeter.commands.reports import read_report

        return read_report(args.model)[0]
    from modelmeter.usecases.analyze import analyze

    with quiet_libraries(args.debug), progress_bar(args.quiet, "analysing"):
        return analyze(args.model, request, mode=args.mode, convention=args.convention)


def run(args: argparse.Namespace) -> int:
    from modelmeter.analysis.utilization import utilization
    from modelmeter.render.utilization import render_utilization

    latency = _latency(args.latency)
    spec = spec_from_args(args)
    if spec is None:
        raise InputError("say which chip: --hardware NAME|FILE, or --peak and --bandwidth")
    check_command_outputs(args, [("-o", args.output)])
    out = output_path(args.output)
    report = _load_report(args, input_request(args))
    result = utilization(report, spec, latency, **pricing(args))
    emit(render_utilization(report, result, args.format), out)
    warn_unverified(spec)
    return 0
