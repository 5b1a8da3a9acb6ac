"""The options of the roofline charts (``--plot``, ``--plot-ops``, ``--plot-breakdown``,
``--plot-top``, ``--plot-group``), their checks before any work, and the writing of the charts
they ask for. They join the chip options' group (``options.add_chip_options`` returns it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from modelmeter.commands.feel import note
from modelmeter.commands.options import count
from modelmeter.errors import InputError
from modelmeter.render.emit import check_plot_path
from modelmeter.render.plot_data import GROUPS

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.hardware import HardwareSpec
    from modelmeter.report import Report


def add_plot_options(g: Any) -> None:
    """The chart options, added to the argument group ``g``."""
    g.add_argument(
        "--plot",
        metavar="FILE",
        help="write a log-log roofline chart, .png, .pdf or .svg (needs --hardware and "
        "matplotlib); identical modules are one marker 'xN' (--no-collapse: one each)",
    )
    g.add_argument(
        "--plot-ops",
        action="store_true",
        help="with --plot: one point per op instead of per module",
    )
    g.add_argument(
        "--plot-breakdown",
        metavar="FILE",
        help="write a chart of where the predicted time goes (compute-limited / "
        "memory-limited / overhead per bar, each bar labelled), .png, .pdf or .svg",
    )
    g.add_argument(
        "--plot-top",
        type=count(1, "--plot-top", 10**6),
        default=20,
        metavar="N",
        help="bars shown by --plot-breakdown, the slowest first (default 20)",
    )
    g.add_argument(
        "--plot-group",
        choices=GROUPS,
        default="block",
        help="--plot-breakdown's bars: block (each module's own ops, identical repeated "
        "blocks summed into one bar 'xN'; the default), type (every module of a type summed: "
        "what to optimise) or module (one bar per module)",
    )


def check_plot_args(args: argparse.Namespace, spec: HardwareSpec | None) -> None:
    """Fail before any work when a plot is asked for without a chip or matplotlib."""
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
        check_plot_path(path)


def write_plots(report: Report, roofline: Roofline, args: argparse.Namespace) -> None:
    """Write the charts the options ask for, saying so on stderr (``--no-collapse`` shows
    identical modules one by one in both)."""
    from modelmeter.render import plots

    collapse = not getattr(args, "no_collapse", False)
    if getattr(args, "plot", None):
        plots.save_roofline(report, roofline, args.plot, per_op=args.plot_ops, collapse=collapse)
        note(args, f"wrote {args.plot}")
    if getattr(args, "plot_breakdown", None):
        group = args.plot_group if collapse or args.plot_group != "block" else "module"
        plots.save_breakdown(
            report, roofline, args.plot_breakdown, top=args.plot_top, group=group
        )
        note(args, f"wrote {args.plot_breakdown}")
