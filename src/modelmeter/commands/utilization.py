"""``modelmeter utilization MODEL --hardware NAME --latency 12ms``: the source document's
utilization, (operations / latency) / peak, MAC-based (2 x MACs) and FLOP-based."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.analysis.utilization import Utilization
    from modelmeter.report import Report

FORMATS = ("table", "json")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from modelmeter.cli import MODEL_HELP, add_model_arguments
    from modelmeter.commands.hardware import add_hardware_options

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
        help="the measured latency of one forward pass at the analysed batch, e.g. 12ms",
    )
    u.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format")
    u.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE")
    add_hardware_options(u)
    u.set_defaults(handler=_cmd_utilization)


def _latency(text: str) -> float:
    from modelmeter.hardware import parse_seconds

    try:
        value = parse_seconds(text)
    except ValueError as e:
        raise InputError(f"--latency: {e}") from None
    if not 0 < value < float("inf"):
        raise InputError(f"--latency must be a positive time (got {text!r})")
    return value


def _load_report(args: argparse.Namespace) -> Report:
    if args.model.endswith(".json"):
        from modelmeter.report import Report

        try:
            with open(args.model, encoding="utf-8") as f:
                return Report.from_dict(json.load(f))
        except OSError as e:
            raise InputError(f"cannot read {args.model}: {e.strerror or e}") from None
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{args.model} is not a modelmeter JSON report: {e}") from None
    from modelmeter.cli import analyze_from_args

    return analyze_from_args(args)


def _cmd_utilization(args: argparse.Namespace) -> int:
    from modelmeter.analysis.utilization import utilization
    from modelmeter.cli import _emit, check_output_path
    from modelmeter.commands.hardware import spec_from_args, unverified_text

    latency = _latency(args.latency)
    spec = spec_from_args(args)
    if spec is None:
        raise InputError("say which chip: --hardware NAME|FILE, or --peak and --bandwidth")
    out = None if args.output in (None, "-") else args.output
    if out:
        check_output_path(out, args.model)
    report = _load_report(args)
    result = utilization(report, spec, latency, tf32=args.tf32)
    if args.format == "json":
        text = json.dumps({"model": report.model, **result.to_dict()}, indent=2) + "\n"
    else:
        text = render_utilization(report, result)
    _emit(text, out)
    if not spec.verified:
        print(f"modelmeter: warning: {unverified_text(spec)}", file=sys.stderr)
    return 0


def _time(seconds: float) -> str:
    from modelmeter.render.table import format_seconds

    return format_seconds(seconds)


def render_utilization(report: Report, u: Utilization) -> str:
    """The utilization as aligned text lines (pure)."""
    from modelmeter.units import format_count, format_rate

    integer = u.peak_key.rpartition(".")[2].startswith(("int", "uint"))
    unit = "OP/s" if integer else "FLOP/s"
    checked = "verified figures" if u.spec.verified else "UNVERIFIED figures"
    rows = [
        ("model", report.model),
        ("hardware", f"{u.spec.display_name} ({u.spec.name}) · {checked}"),
        ("peak", f"{format_rate(u.peak, unit)} ({u.peak_key}) for the model's {u.dtype} MACs"),
        ("latency", f"{_time(u.latency_s)} (given)"),
        (
            "MAC utilization",
            f"{100 * u.mac_utilization:.1f}% = 2 x {format_count(u.macs)} MACs / "
            f"{_time(u.latency_s)} = {format_rate(u.mac_ops_per_s, 'OP/s')} of "
            f"{format_rate(u.peak, unit)}",
        ),
        (
            "FLOP utilization",
            f"{100 * u.flop_utilization:.1f}% = {format_count(u.flops)} FLOPs "
            f"({report.convention}) / {_time(u.latency_s)} = {format_rate(u.flops_per_s)} of "
            f"{format_rate(u.peak, unit)}",
        ),
        (
            "roofline",
            f"predicts {_time(u.predicted_latency_s)} (attainable FLOP utilization "
            f"{100 * u.attainable_utilization:.1f}%)",
        ),
    ]
    if u.throughput is not None:
        rows.append(("throughput", f"{u.throughput:,.1f} samples/s at batch {u.batch}"))
    rows += [("note", n) for n in u.notes]
    width = max(len(k) for k, _ in rows)
    return "".join(f"{k:<{width}}  {v}\n" for k, v in rows)
