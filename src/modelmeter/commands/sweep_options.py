"""``analyze --sweep NAME=VALUES`` and ``analyze --formula [DIMS]``: the options, their syntax,
and the handler that delegates to the sweep use cases and renders the result.

Sizes: ``1,2,4,8`` (a list), ``128..8192`` (doubling from 128 up to 8192, 8192 included),
``128..1024:128`` (from 128 to 1024 in steps of 128), or a mix (``1,2,4..64``). Names:
``batch``, ``seq``, ``size`` (H=W of an image) or a symbolic dimension of an ONNX model.
"""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.pricing_options import pricing
from modelmeter.commands.storage_options import storage_kwargs
from modelmeter.errors import InputError
from modelmeter.shapes import MAX_DIM

MAX_AXIS = 4096  # values of one size
MAX_GRID = 10_000  # points of a sweep

SWEEP_HELP = (
    "analyse over sizes: NAME=VALUES with NAME batch (first dimension of every input), seq "
    "(second dimension of token inputs), size (H=W of images) or an ONNX symbolic dimension, "
    "and VALUES 1,2,4,8 or 128..8192 (doubling) or 128..1024:128 (step); repeat for a grid. "
    "Prints one row per point and the exact formulas; --plot FILE draws them"
)
FORMULA_HELP = (
    "print each count as an exact polynomial in the sizes DIMS (comma-separated; default "
    "batch, and seq when the model has token inputs), from a few traces, checked at a size "
    "it was not fitted on"
)


def _number(text: str, spec: str) -> int:
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 12 or not 1 <= int(t) <= MAX_DIM:
        raise InputError(f"malformed --sweep {spec[:80]!r}: {t[:20]!r} is not a size from 1 to {MAX_DIM}")
    return int(t)


def _range(part: str, spec: str) -> list[int]:
    lo_text, _, rest = part.partition("..")
    hi_text, colon, step_text = rest.partition(":")
    lo, hi = _number(lo_text, spec), _number(hi_text, spec)
    if hi < lo:
        raise InputError(f"malformed --sweep {spec[:80]!r}: {lo}..{hi} goes down")
    out: list[int] = []
    if colon:
        step = _number(step_text, spec)
        out = list(range(lo, hi + 1, step)[: MAX_AXIS + 1])
    else:
        v = lo
        while v <= hi and len(out) <= MAX_AXIS:
            out.append(v)
            v *= 2
    if out[-1] != hi and not colon:
        out.append(hi)
    return out


def parse_sweep(spec: str) -> tuple[str, list[int]]:
    """``seq=128..1024`` -> ("seq", [128, 256, 512, 1024]); InputError when malformed."""
    name, eq, values = spec.partition("=")
    name = name.strip()
    if not eq or not name or any(c.isspace() for c in name) or not values.strip():
        raise InputError(f"malformed --sweep {spec[:80]!r}: write NAME=VALUES, e.g. batch=1,2,4,8")
    out: list[int] = []
    for part in values.split(","):
        for v in _range(part, spec) if ".." in part else [_number(part, spec)]:
            if v not in out:
                out.append(v)
    if len(out) > MAX_AXIS:
        raise InputError(f"--sweep {name}: more than {MAX_AXIS} sizes")
    return name, out


def sweep_axes(specs: list[str]) -> dict[str, list[int]]:
    """Every ``--sweep`` parsed; InputError when a name is given twice or the grid is huge."""
    axes: dict[str, list[int]] = {}
    points = 1
    for spec in specs:
        name, values = parse_sweep(spec)
        if name in axes:
            raise InputError(f"--sweep {name} is given twice")
        axes[name] = values
        points *= len(values)
    if points > MAX_GRID:
        raise InputError(f"--sweep: {points} grid points; at most {MAX_GRID}")
    return axes


def add_sweep_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweeps and exact formulas")
    g.add_argument("--sweep", action="append", default=[], metavar="NAME=VALUES", help=SWEEP_HELP)
    g.add_argument("--formula", nargs="?", const="", default=None, metavar="DIMS", help=FORMULA_HELP)
    g.add_argument(
        "--no-formula",
        action="store_true",
        help="with --sweep: trace every point (default: points the checked formula covers "
        "come from it, exactly, without a trace)",
    )


def wants_sweep(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "sweep", None)) or getattr(args, "formula", None) is not None


def run_sweep(args: argparse.Namespace) -> int:
    """The handler of ``analyze --sweep`` / ``--formula``: parse, delegate, render, write."""
    from modelmeter.commands.feel import note
    from modelmeter.commands.options import (
        input_request,
        progress_bar,
        quiet_libraries,
        spec_from_args,
        warn_unverified,
    )
    from modelmeter.commands.paths import check_command_outputs
    from modelmeter.commands.table_options import table_width
    from modelmeter.render.emit import check_plot_path, emit, output_path

    if len(args.model) != 1:
        raise InputError("--sweep and --formula take one MODEL")
    model = args.model = args.model[0]
    axes = sweep_axes(args.sweep)
    _check_formats(args, axes)
    if "," in (args.hardware or ""):
        raise InputError("--sweep and --formula take one chip (--hardware NAME)")
    request = input_request(args)
    if request.batch is not None and "batch" in axes:
        raise InputError("--batch and --sweep batch=... both set the batch: give one")
    check_command_outputs(args, [("-o", args.output), ("--plot", args.plot)])
    spec = spec_from_args(args)
    if args.plot:  # the sweep's chart (cost, and latency with a chip, against the size)
        from modelmeter.render.plots import require_matplotlib

        require_matplotlib()
        check_plot_path(args.plot)
    out = output_path(args.output)
    with quiet_libraries(args.debug), progress_bar(args.quiet, "sweeping") as progress:
        text = _result_text(args, model, request, axes, spec, progress, table_width())
    emit(text, out)
    if args.plot:
        note(args, f"wrote {args.plot}")
    if spec is not None:
        warn_unverified(spec)
    return 0


def _check_formats(args: argparse.Namespace, axes: dict[str, list[int]]) -> None:
    from modelmeter.render.formats import FORMULA_FORMATS, SWEEP_FORMATS

    if args.plot_breakdown:
        raise InputError("--plot-breakdown draws one report: with --sweep, --plot FILE draws the sweep")
    if not axes:
        if args.format not in FORMULA_FORMATS:
            raise InputError(f"--formula prints as {', '.join(FORMULA_FORMATS)} (-f {args.format}: use --sweep)")
        if args.no_formula or args.plot:
            raise InputError(f"{'--plot' if args.plot else '--no-formula'} goes with --sweep")
        return
    if args.format not in SWEEP_FORMATS:
        raise InputError(f"--sweep prints as {', '.join(SWEEP_FORMATS)} (a chart: --plot FILE)")


def _result_text(args: argparse.Namespace, model: str, request: Any, axes: dict[str, list[int]],
                 spec: Any, progress: Any, width: int) -> str:  # fmt: skip
    from modelmeter.render.sweep import render_formula, render_sweep
    from modelmeter.usecases.sweep import formula, sweep

    common = dict(mode=args.mode, convention=args.convention, backward=args.backward,
                  progress=progress, **storage_kwargs(args))  # fmt: skip
    if not axes:
        dims = [d.strip() for d in args.formula.split(",") if d.strip()] or None
        return render_formula(formula(model, request, dims=dims, **common), args.format, width=width)
    named = {k: v for k, v in axes.items() if k in ("batch", "seq", "size")}
    others = {k: v for k, v in axes.items() if k not in named}
    result = sweep(model, request, **named, dims=others, hardware=spec, roofline_options=pricing(args),
                   formula=not args.no_formula, **common)  # fmt: skip
    if args.plot:
        from modelmeter.render.sweep_plot import save_sweep_plot

        save_sweep_plot(result, args.plot)
    return render_sweep(result, args.format, width=width)


__all__ = ["add_sweep_options", "parse_sweep", "run_sweep", "sweep_axes", "wants_sweep"]
