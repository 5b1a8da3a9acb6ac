"""``modelmeter measure``: run a model for real, time it, and set the roofline beside it.

The command parses, checks what it can before any model is built, calls
``modelmeter.measure`` and renders the result (pure functions below).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from modelmeter.analysis.measure import MeasureResult
from modelmeter.errors import InputError
from modelmeter.units import format_bytes, format_count, format_rate

DEVICE_CHOICES = ("cpu", "cuda", "mps")
FORMATS = ("table", "json")


# ---- argument types ------------------------------------------------------------------------


def count(minimum: int, what: str) -> Any:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r}: give a whole number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: must be >= {minimum}")
        return value

    return parse


def device_arg(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    base, _, index = text.strip().lower().partition(":")
    if base not in DEVICE_CHOICES or (index and (base != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(
            f"invalid device {text!r}: use {', '.join(DEVICE_CHOICES)} or cuda:N"
        )
    return text.strip().lower()


# ---- progress ------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(quiet: bool, label: str) -> Iterator[Any]:
    """A rich progress bar on stderr (none when quiet or stderr is not a terminal); yields
    the ``progress(stage, done, total)`` callback, or None."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"{label}: building and analysing the model", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {stage}", completed=done, total=total)

        yield update


# ---- rendering (pure) ----------------------------------------------------------------------


def format_seconds(s: float | None) -> str:
    """``12.35 ms``, ``840.0 us``, ``1.204 s`` ('-' for None)."""
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ratio(x: float | None) -> str:
    """``1.23``; two significant digits below 0.1 (``0.0031``)."""
    if x is None:
        return "-"
    return f"{x:.2g}" if abs(x) < 0.1 else f"{x:.2f}"


def render_text(result: MeasureResult, depth: int | None = 1) -> str:
    """The result as plain text: timing, rates, memory, predicted vs measured, modules."""
    r = result
    lat = r.latency
    lines = [
        f"model       {r.model}",
        f"device      {r.device} ({r.device_name}), {r.torch_version}"
        + (f", {r.threads} threads" if r.threads else ""),
        f"run         {r.dtype}" + (" (TF32 on)" if r.tf32 else "") + f", batch {r.batch}, "
        f"{r.repeats} timed calls after {r.warmup} warm-up, {r.timer}",
        "",
        f"latency     {format_seconds(lat.median)} median  (min {format_seconds(lat.min)}, "
        f"max {format_seconds(lat.max)}, IQR {format_seconds(lat.iqr)} = {_pct(lat.rel_iqr)})",
        f"throughput  {r.throughput:.2f} samples/s",
    ]
    comp = f"{format_count(r.flops)} FLOPs/call -> {format_rate(r.achieved_flops)}"
    if r.peak:
        comp += f"  ({_pct(r.compute_utilization)} of {format_rate(r.peak)} {r.dtype} peak)"
    bw = f"{format_bytes(r.bytes_moved)}/call -> {format_rate(r.achieved_bandwidth, 'B/s')}"
    if r.bandwidth:
        bw += f"  ({_pct(r.bandwidth_utilization)} of {format_rate(r.bandwidth, 'B/s')})"
    lines += [f"compute     {comp}", f"memory      {bw}"]
    m = r.memory
    if m.peak_bytes is not None:
        extra = ""
        if m.delta_bytes is not None and m.baseline_bytes is not None:
            extra = f" (+{format_bytes(m.delta_bytes)} over {format_bytes(m.baseline_bytes)})"
        lines.append(f"peak memory {format_bytes(m.peak_bytes)}{extra}: {m.method}")
    if r.page_faults is not None and r.fresh_page_bytes is not None:
        lines.append(
            f"page faults {r.page_faults:,.0f}/call ({format_bytes(r.fresh_page_bytes)} of "
            "memory first touched per call)"
        )
    p = r.prediction
    if p is not None:
        lines += [
            "",
            f"predicted vs measured on {p.hardware}",
            f"  {'':<22}{'predicted':>12}{'measured':>12}{'pred/meas':>11}",
            f"  {'roofline latency':<22}{format_seconds(p.latency_s):>12}"
            f"{format_seconds(lat.median):>12}{_ratio(r.ratio):>11}",
            f"  {'  compute':<22}{format_seconds(p.compute_s):>12}",
            f"  {'  memory':<22}{format_seconds(p.memory_s):>12}",
            f"  {'  overhead':<22}{format_seconds(p.overhead_s):>12}"
            + (
                f"   (device idle between launches; {p.kernels} kernels issued every "
                f"{format_seconds(p.kernel_overhead_s)}, overlapping execution)"
                if p.launches_overlap
                else f"   ({p.kernels} kernels x {format_seconds(p.kernel_overhead_s)})"
            ),
            f"  {'FLOPs / peak only':<22}{format_seconds(p.flops_only_s):>12}"
            f"{'':>12}{_ratio(r.flops_only_ratio):>11}",
            f"  bound: {p.bound}",
        ]
    if r.hooked is not None:
        lines += [
            "",
            "per module (forward hooks synchronise the device around every module call; "
            "times include children"
            + (
                "; predicted with every launch paid, as the hooks serialise them)"
                if p is not None and p.launches_overlap
                else ")"
            ),
            f"  with hooks {format_seconds(r.hooked.median)} vs {format_seconds(lat.median)} "
            f"without: x{_ratio(r.hook_overhead)}",
        ]
        lines.append(
            f"  {'module':<40}{'type':<18}{'calls':>6}{'measured':>12}{'IQR':>11}"
            f"{'share':>8}{'predicted':>12}{'pred/meas':>10}"
        )
        total = r.hooked.median or 1.0
        for mt in r.modules:
            if depth is not None and mt.depth > depth:
                continue
            name = ("  " * mt.depth + (mt.name or "(model)"))[:39]
            lines.append(
                f"  {name:<40}{mt.type[:17]:<18}{mt.calls:>6}"
                f"{format_seconds(mt.measured.median):>12}{format_seconds(mt.measured.iqr):>11}"
                f"{_pct(mt.measured.median / total):>8}{format_seconds(mt.predicted_s):>12}"
                f"{_ratio(mt.ratio):>10}"
            )
    if r.per_class is not None:
        lines += _per_class_lines(r)
    if r.notes:
        lines += ["", *(f"note: {n}" for n in r.notes)]
    return "\n".join(lines) + "\n"


def _per_class_lines(r: MeasureResult) -> list[str]:
    pc = r.per_class
    assert pc is not None
    p = pc.profile
    predicted = "busy time (compute or memory)" if p.device_time else "busy time + overhead"
    tool = p.method.partition(":")[0]
    kernels = any(row.kernels is not None for row in pc.rows)
    lines = [
        "",
        f"per kernel class ({tool}, {p.runs} calls; measured: {p.basis}; "
        f"predicted: roofline {predicted})",
        f"  profiled call {format_seconds(p.profiled_s)} vs {format_seconds(r.latency.median)} "
        f"unprofiled; classes sum to {format_seconds(pc.measured_s)}",
        f"  {'class':<14}{'records':>8}{'ops':>7}"
        + (f"{'kernels':>9}" if kernels else "")
        + f"{'measured':>12}{'share':>8}{'predicted':>12}{'pred/meas':>10}",
    ]
    total = pc.measured_s or 1.0
    for row in pc.rows:
        lines.append(
            f"  {row.kernel_class:<14}{row.records:>8}{row.ops:>7.0f}"
            + (f"{row.kernels or 0:>9.0f}" if kernels else "")
            + f"{format_seconds(row.measured_s):>12}{_pct(row.measured_s / total):>8}"
            f"{format_seconds(row.predicted_s):>12}{_ratio(row.ratio):>10}"
        )
    lines += [f"  note: {n}" for n in [*p.notes, *pc.notes]]
    return lines


def render_json(result: MeasureResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


# ---- the command ---------------------------------------------------------------------------


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from modelmeter.cli import MODEL_HELP, _depth, add_model_arguments

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
        "--hardware",
        metavar="NAME|FILE",
        help="a hardware spec (built-in name or .toml, e.g. from 'modelmeter calibrate'): "
        "adds utilization and the roofline prediction",
    )
    p.add_argument(
        "--warmup",
        type=count(0, "warm-up count"),
        default=3,
        metavar="N",
        help="untimed calls first (default 3)",
    )
    p.add_argument(
        "--repeats",
        type=count(1, "repeat count"),
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
        metavar="FILE.png",
        help="write a chart of measured vs predicted time per kernel class (implies "
        "--per-class; needs matplotlib)",
    )
    p.add_argument(
        "--depth",
        type=_depth,
        default=1,
        metavar="N",
        help="module levels shown with --per-module (default 1; 'all')",
    )
    p.add_argument("--tf32", action="store_true", help="allow TF32 for float32 on CUDA")
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=N",
        help="set a symbolic input dimension of an ONNX file, e.g. --dim batch=8 (repeatable)",
    )
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format")
    p.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modelmeter.cli import _emit, _quiet_libraries, check_output_path, model_inputs
    from modelmeter.units import canonical_dtype

    if args.output == "-":
        args.output = None
    positional, named = model_inputs(args)
    if args.dtype is not None:
        args.dtype = canonical_dtype(args.dtype)
    if args.output:
        check_output_path(args.output, args.model)
    if args.plot_classes:
        from modelmeter.render.plots import require_matplotlib

        require_matplotlib()
        if not args.plot_classes.lower().endswith(".png"):
            raise InputError(f"plot file {args.plot_classes!r}: give a .png file name")
        check_output_path(args.plot_classes, args.model)
        args.per_class = True
    spec = None
    if args.hardware:
        from modelmeter.hardware import load_spec

        spec = load_spec(args.hardware)
    from modelmeter.frontends import frontend_for

    with _quiet_libraries(args.debug), progress_bar(args.quiet, "measuring") as progress:
        if frontend_for(args.model).name == "onnx":
            result = _measure_onnx(args, positional, named, spec, progress)
        else:
            result = _measure_torch(args, positional, named, spec, progress)
    text = render_json(result) if args.format == "json" else render_text(result, args.depth)
    _emit(text, args.output)
    if args.plot_classes:
        from modelmeter.render.class_plot import save_classes

        save_classes(result, args.plot_classes)
        print(f"modelmeter: wrote {args.plot_classes}", file=sys.stderr)
    return 0


def _measure_onnx(
    args: argparse.Namespace, positional: list[str], named: dict[str, str], spec: Any,
    progress: Any,
) -> MeasureResult:
    """An ONNX file, through onnxruntime (torch is not needed)."""
    from modelmeter.cli import parse_dims
    from modelmeter.usecases.measure import measure

    return measure(
        args.model, positional or None, kwargs=named or None, dims=parse_dims(args.dim),
        device=args.device, batch=args.batch, warmup=args.warmup, repeats=args.repeats,
        hardware=spec, progress=progress, dtype=args.dtype, per_module=args.per_module,
        per_class=args.per_class, tf32=args.tf32,
    )  # fmt: skip


def _measure_torch(
    args: argparse.Namespace, positional: list[str], named: dict[str, str], spec: Any,
    progress: Any,
) -> MeasureResult:
    from modelmeter.frontends.torch.device import resolve_device
    from modelmeter.usecases.measure import measure

    if args.dim:
        raise InputError("--dim sets symbolic dimensions of ONNX files only")
    resolve_device(args.device)
    return measure(
        args.model, positional or None, kwargs=named or None, device=args.device,
        dtype=args.dtype, batch=args.batch, warmup=args.warmup, repeats=args.repeats,
        per_module=args.per_module, per_class=args.per_class, hardware=spec, tf32=args.tf32,
        progress=progress,
    )  # fmt: skip
