"""``modelmeter hardware list|show`` and the hardware options other commands share
(``--hardware NAME|FILE``, ``--peak/--bandwidth/--peak-dtype``, ``--tf32``, plots)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.hardware import HardwareSpec
    from modelmeter.report import Report

LIST_FORMATS = ("table", "md", "json")
SHOW_FORMATS = ("table", "json", "toml")


def add_hardware_options(p: argparse.ArgumentParser, plots: bool = False) -> None:
    """Add the chip options (and, for analyze, the plot options) to a parser."""
    g = p.add_argument_group("hardware (roofline latency and utilization)")
    g.add_argument(
        "--hardware",
        "--hw",
        metavar="NAME|FILE",
        help="a device from 'modelmeter hardware list' or a hardware TOML file",
    )
    g.add_argument(
        "--peak",
        metavar="RATE",
        help="instead of --hardware: the chip's peak, e.g. 1.7T (OP/s in --peak-dtype)",
    )
    g.add_argument(
        "--bandwidth", metavar="RATE", help="with --peak: memory bandwidth in bytes/s, e.g. 25.6G"
    )
    g.add_argument(
        "--peak-dtype",
        default="int8",
        metavar="D",
        help="with --peak: the dtype the peak is for (default int8)",
    )
    g.add_argument(
        "--tf32",
        action="store_true",
        help="let float32 matmuls and convolutions use the TF32 tensor-core peak",
    )
    if plots:
        g.add_argument(
            "--plot",
            metavar="FILE.png",
            help="write a log-log roofline chart (needs --hardware and matplotlib)",
        )
        g.add_argument(
            "--plot-ops",
            action="store_true",
            help="with --plot: one point per op instead of per module",
        )
        g.add_argument(
            "--plot-breakdown",
            metavar="FILE.png",
            help="write a per-module time breakdown chart (compute / memory / overhead)",
        )
        g.add_argument(
            "--plot-top",
            type=int,
            default=20,
            metavar="N",
            help="modules shown by --plot-breakdown (default 20)",
        )


def _rate(text: str, option: str, kind: str) -> float:
    """``--peak`` (kind ``rate``: 1.7T, 1.7TOPS, 312TFLOPS) or ``--bandwidth`` (``bandwidth``:
    25.6G, 25.6GB/s, 800GiB/s) as a positive finite number."""
    from modelmeter.hardware.loader import parse_quantity

    try:
        value = parse_quantity(text, kind)
    except ValueError as e:
        raise InputError(f"{option}: {e}") from None
    if not 0 < value < float("inf"):
        raise InputError(f"{option}: must be a positive {'rate' if kind == 'rate' else kind} "
                         f"(got {text!r})")
    return value


def spec_from_args(args: argparse.Namespace) -> HardwareSpec | None:
    """The HardwareSpec the options name, None when none was asked for."""
    peak, bandwidth = getattr(args, "peak", None), getattr(args, "bandwidth", None)
    name = getattr(args, "hardware", None)
    if name and (peak is not None or bandwidth is not None):
        raise InputError("give either --hardware or --peak with --bandwidth, not both")
    if name:
        from modelmeter.hardware import load_spec

        return load_spec(name)
    if peak is not None or bandwidth is not None:
        if peak is None or bandwidth is None:
            raise InputError(
                "--peak and --bandwidth go together (e.g. --peak 1.7T --bandwidth 25.6G)"
            )
        from modelmeter.hardware import spec_from_peak

        return spec_from_peak(
            _rate(peak, "--peak", "rate"),
            _rate(bandwidth, "--bandwidth", "bandwidth"),
            dtype=args.peak_dtype,
        )
    return None


def unverified_text(spec: HardwareSpec) -> str:
    """The warning printed when a device's figures are not all verified."""
    return (
        f"hardware {spec.name!r} has UNVERIFIED figures (see 'modelmeter hardware show "
        f"{spec.name}'); treat its predictions as estimates"
    )


def check_plot_args(args: argparse.Namespace, spec: HardwareSpec | None) -> None:
    """Fail before any work when a plot is asked for without a chip or matplotlib."""
    from modelmeter.cli import check_output_path

    paths = [p for p in (getattr(args, "plot", None), getattr(args, "plot_breakdown", None)) if p]
    if getattr(args, "plot_top", 1) < 1:
        raise InputError("--plot-top must be >= 1")
    if not paths:
        return
    if spec is None:
        raise InputError("--plot and --plot-breakdown need --hardware (or --peak/--bandwidth)")
    from modelmeter.render.plots import require_matplotlib

    require_matplotlib()
    for path in paths:
        if not path.lower().endswith(".png"):
            raise InputError(f"plot file {path!r}: give a .png file name")
        check_output_path(path, args.model)


def write_plots(report: Report, roofline: Roofline, args: argparse.Namespace) -> list[str]:
    """Write the plots the options ask for; returns the paths written."""
    from modelmeter.render import plots

    written = []
    if getattr(args, "plot", None):
        plots.save_roofline(report, roofline, args.plot, per_op=args.plot_ops)
        written.append(args.plot)
    if getattr(args, "plot_breakdown", None):
        plots.save_breakdown(report, roofline, args.plot_breakdown, top=args.plot_top)
        written.append(args.plot_breakdown)
    return written


# ---- the command -----------------------------------------------------------------------------


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    h = subparsers.add_parser(
        "hardware",
        parents=[common],
        help="list the hardware database or show one device",
        description="The chips modelmeter knows: dense peaks per dtype, bandwidth, sources.",
    )
    sub = h.add_subparsers(dest="hardware_command", metavar="ACTION", parser_class=type(h))
    ls = sub.add_parser("list", parents=[common], help="every known device, with its sources")
    ls.add_argument("--format", "-f", choices=LIST_FORMATS, default="table", help="output format")
    ls.add_argument("-o", "--output", metavar="FILE", help="write the list to FILE")
    ls.set_defaults(handler=_cmd_list)
    show = sub.add_parser("show", parents=[common], help="every field of one device")
    show.add_argument("name", metavar="NAME|FILE", help="a device name or a hardware TOML file")
    show.add_argument("--format", "-f", choices=SHOW_FORMATS, default="table", help="output format")
    show.add_argument("-o", "--output", metavar="FILE", help="write it to FILE")
    show.set_defaults(handler=_cmd_show)
    h.set_defaults(handler=lambda args: _usage(h))


def _usage(parser: argparse.ArgumentParser) -> int:
    raise InputError(f"say what to do: '{parser.prog} list' or '{parser.prog} show NAME'")


def _emit(args: argparse.Namespace, text: str) -> None:
    from modelmeter.cli import _emit as emit
    from modelmeter.cli import check_output_path

    out = None if args.output in (None, "-") else args.output
    if out:
        check_output_path(out)
    emit(text, out)


def _cmd_list(args: argparse.Namespace) -> int:
    from modelmeter.hardware import list_specs
    from modelmeter.hardware.listing import render_list

    _emit(args, render_list(list_specs(), args.format))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from modelmeter.hardware import load_spec
    from modelmeter.hardware.listing import render_show

    _emit(args, render_show(load_spec(args.name), args.format))
    return 0
