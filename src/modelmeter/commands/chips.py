"""``analyze MODEL --hardware A,B,C``: one model on several chips side by side (the model is
analysed once; the roofline runs per chip). Parses, delegates and renders."""

from __future__ import annotations

import argparse
import sys

from modelmeter.commands.feel import note, progress_bar
from modelmeter.commands.pricing_options import pricing
from modelmeter.commands.storage_options import storage_kwargs
from modelmeter.errors import InputError

MAX_CHIPS = 64


def chip_names(args: argparse.Namespace) -> list[str] | None:
    """The chips of ``--hardware A,B,C`` (None for one chip or none)."""
    text = getattr(args, "hardware", None)
    if not text or "," not in text:
        return None
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            raise InputError(f"--hardware {text[:80]!r}: an empty chip name between commas")
        if name not in names:
            names.append(name)
    if len(names) > MAX_CHIPS:
        raise InputError(f"--hardware: at most {MAX_CHIPS} chips")
    return names


def run_chips(args: argparse.Namespace, names: list[str]) -> int:
    """The handler of ``analyze --hardware A,B,C``."""
    from modelmeter.analysis.chips import ChipComparison, chip_row
    from modelmeter.analysis.roofline import roofline
    from modelmeter.commands.options import PROG, input_request, quiet_libraries, warn_unverified
    from modelmeter.commands.paths import check_command_outputs
    from modelmeter.commands.table_options import table_width
    from modelmeter.hardware import load_spec
    from modelmeter.render.chips import render_chips, save_chips_plot
    from modelmeter.render.emit import check_plot_path, emit, output_path
    from modelmeter.render.formats import CHIPS_FORMATS
    from modelmeter.usecases.analyze import analyze

    if len(args.model) != 1:
        raise InputError("several chips (--hardware A,B) take one MODEL")
    args.model = args.model[0]
    if args.format not in CHIPS_FORMATS:
        raise InputError(f"several chips print as {', '.join(CHIPS_FORMATS)} (not -f {args.format})")
    if args.peak is not None or args.bandwidth is not None:
        raise InputError("give either --hardware or --peak with --bandwidth, not both")
    if args.plot_breakdown:
        raise InputError("--plot-breakdown draws one chip's time: give one --hardware")
    request = input_request(args)
    check_command_outputs(args, [("-o", args.output), ("--plot", args.plot)])
    out = output_path(args.output)
    specs = [load_spec(n) for n in names]  # a bad name fails before the model loads
    if args.plot:
        from modelmeter.render.plots import require_matplotlib

        require_matplotlib()
        check_plot_path(args.plot)
    with quiet_libraries(args.debug), progress_bar(args.quiet, "analysing"):
        report = analyze(args.model, request, mode=args.mode, convention=args.convention,
                         backward=args.backward, **storage_kwargs(args))  # fmt: skip
    roofs = [roofline(report, spec, **pricing(args)) for spec in specs]
    comparison = ChipComparison(
        model=report.model,
        convention=report.convention,
        batch=roofs[0].batch,
        rows=[chip_row(r) for r in roofs],
    )
    emit(render_chips(comparison, args.format, width=table_width()), out)
    if args.plot:
        save_chips_plot(comparison, args.plot)
        note(args, f"wrote {args.plot}")
    if report.unsupported:
        print(f"{PROG}: warning: {len(report.unsupported)} unsupported op(s) NOT COUNTED: "
              f"{', '.join(report.unsupported)}", file=sys.stderr)  # fmt: skip
    for spec in specs:
        warn_unverified(spec)
    return 0


__all__ = ["chip_names", "run_chips"]
