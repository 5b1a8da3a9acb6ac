"""``modelmeter measure``: run a model for real, time it, and set the roofline beside it.

The command parses, checks what it can before any model is built, calls the ``measure`` use
case and renders the result (``render.measure``).
"""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.feel import note
from modelmeter.commands.options import (
    DEFAULT_DEPTH,
    MODEL_HELP,
    add_chip_options,
    add_depth_option,
    add_model_arguments,
    add_output_options,
    add_units_option,
    count,
    device_arg,
    given,
    input_request,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    with_units,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.errors import InputError
from modelmeter.render.emit import check_plot_path, emit, output_path
from modelmeter.render.formats import MEASURE_FORMATS

MAX_CALLS = 10**6  # warm-up or timed calls: more is a typo, not a measurement


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "measure",
        parents=[common],
        help="run a model for real and time it (predicted vs measured)",
        description="Run real inference on a device, time it (warm-up, repeats, median and\n"
        "spread) and report throughput, achieved FLOP/s and bandwidth, peak memory and, with\n"
        "--hardware, utilization and the roofline prediction beside the measurement.\n"
        "Named models run with random weights; a given module is measured as a deep copy.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    add_model_arguments(p, analysis=False)
    p.add_argument(
        "--device", type=device_arg, default="cpu", help="cpu (default), cuda, cuda:N or mps"
    )
    p.add_argument(
        "--warmup",
        type=count(0, "warm-up count", MAX_CALLS),
        default=3,
        metavar="N",
        help="untimed calls first (default 3)",
    )
    p.add_argument(
        "--repeats",
        type=count(1, "repeat count", MAX_CALLS),
        default=10,
        metavar="N",
        help="timed calls (default 10)",
    )
    p.add_argument(
        "--per-module",
        action="store_true",
        help="also time every module (hooks synchronise the device around each call: "
        "slower; the cost is reported)",
    )
    p.add_argument(
        "--per-class",
        action="store_true",
        help="also profile a few calls (torch.profiler; onnxruntime's profiler for ONNX "
        "files) and time each kernel class (conv, norm, matmul, ...) beside the roofline's "
        "time for it",
    )
    p.add_argument(
        "--plot-classes",
        metavar="FILE",
        help="write a chart of measured vs predicted time per kernel class, .png, .pdf or "
        ".svg (implies "
        "--per-class; needs matplotlib)",
    )
    add_depth_option(
        p,
        f"module levels of --per-module's table (default {DEFAULT_DEPTH}; 'all' for every "
        "level)",
    )
    add_output_options(p, MEASURE_FORMATS)
    add_chip_options(p)
    add_units_option(p)
    p.set_defaults(handler=with_units(run))


def check_options(args: argparse.Namespace) -> None:
    """Refuse, in one line, --depth without a per-module table and --depth or --units with
    json (which holds every module and exact byte counts)."""
    if given(args, "depth") and not args.per_module:
        raise InputError("--depth chooses the rows of the --per-module table: add --per-module")
    for dest in ("depth", "units"):
        if given(args, dest) and args.format == "json":
            raise InputError(
                f"--{dest} does not apply to -f json (json holds every module with exact "
                "figures); it applies to table, md"
            )


def run(args: argparse.Namespace) -> int:
    from modelmeter.usecases.measure import measure

    check_options(args)
    request = input_request(args)
    check_command_outputs(args, [("-o", args.output), ("--plot-classes", args.plot_classes)])
    out = output_path(args.output)
    if args.plot_classes:
        from modelmeter.render.plots import require_matplotlib

        require_matplotlib()
        check_plot_path(args.plot_classes)
        args.per_class = True
    spec = spec_from_args(args)
    with quiet_libraries(args.debug), progress_bar(args.quiet, "measuring") as progress:
        result = measure(
            args.model, request, device=args.device, warmup=args.warmup,
            repeats=args.repeats, per_module=args.per_module, per_class=args.per_class,
            hardware=spec, tf32=args.tf32, progress=progress,
            ideal=args.ideal, runtime=args.runtime,
        )  # fmt: skip
    from modelmeter.render.measure import render_measure

    emit(render_measure(result, args.format, depth=args.depth), out)
    if args.plot_classes:
        from modelmeter.render.class_plot import save_classes

        save_classes(result, args.plot_classes)
        note(args, f"wrote {args.plot_classes}")
    return 0
