"""A measurement as text (``measure``'s table) or JSON: timing, rates, memory, predicted vs
measured, per module and per kernel class (pure functions of a MeasureResult)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.formats import MEASURE_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps
from modelmeter.render.table_layout import shorten_name
from modelmeter.units import format_bytes, format_count, format_rate
from modelmeter.units import format_percent as _pct
from modelmeter.units import format_ratio as _ratio
from modelmeter.units import format_timing as _s

if TYPE_CHECKING:
    from modelmeter.analysis.measure import MeasureResult

NAME_MAX = 48  # the per-module table's name column at most (names shortened from the middle)


def measure_text(result: MeasureResult, depth: int | None = 3) -> str:
    """The result as plain text: timing, rates, memory, predicted vs measured, modules."""
    lines = _run_lines(result)
    if result.prediction is not None:
        lines += _prediction_lines(result)
    if result.hooked is not None:
        lines += _module_lines(result, depth)
    if result.per_class is not None:
        lines += _per_class_lines(result)
    if result.notes:
        lines += ["", *(f"note: {n}" for n in result.notes)]
    return "\n".join(lines) + "\n"


def _run_lines(r: MeasureResult) -> list[str]:
    """What ran, its latency, rates and memory."""
    lat = r.latency
    lines = [
        f"model       {r.model}",
        f"device      {r.device} ({r.device_name}), {r.torch_version}"
        + (f", {r.threads} threads" if r.threads else ""),
        f"run         {r.dtype}" + (" (TF32 on)" if r.tf32 else "") + f", batch {r.batch}, "
        f"{r.repeats} timed calls after {r.warmup} warm-up, {r.timer}",
        "",
        f"latency     {_s(lat.median)} median  (min {_s(lat.min)}, "
        f"max {_s(lat.max)}, IQR {_s(lat.iqr)} = {_pct(lat.rel_iqr)})",
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
    return lines


def _prediction_lines(r: MeasureResult) -> list[str]:
    """The roofline's prediction beside the measured latency."""
    p = r.prediction
    assert p is not None
    return [
        "",
        f"predicted vs measured on {p.hardware}",
        f"  {'':<22}{'predicted':>12}{'measured':>12}{'pred/meas':>11}",
        f"  {'roofline latency':<22}{_s(p.latency_s):>12}"
        f"{_s(r.latency.median):>12}{_ratio(r.ratio):>11}",
        f"  {'  compute':<22}{_s(p.compute_s):>12}",
        f"  {'  memory':<22}{_s(p.memory_s):>12}",
        f"  {'  overhead':<22}{_s(p.overhead_s):>12}"
        + (
            f"   (device idle between launches; {p.kernels} kernels issued every "
            f"{_s(p.kernel_overhead_s)}, overlapping execution)"
            if p.launches_overlap
            else f"   ({p.kernels} kernels x {_s(p.kernel_overhead_s)})"
        ),
        f"  {'FLOPs / peak only':<22}{_s(p.flops_only_s):>12}"
        f"{'':>12}{_ratio(r.flops_only_ratio):>11}",
        f"  bound: {p.bound}",
    ]


def _module_lines(r: MeasureResult, depth: int | None) -> list[str]:
    """The per-module timings (forward hooks) down to ``depth``."""
    hooked = r.hooked
    assert hooked is not None
    overlap = r.prediction is not None and r.prediction.launches_overlap
    lines = [
        "",
        "per module (forward hooks synchronise the device around every module call; "
        "times include children"
        + ("; predicted with every launch paid, as the hooks serialise them)" if overlap else ")"),
        f"  with hooks {_s(hooked.median)} vs {_s(r.latency.median)} "
        f"without: x{_ratio(r.hook_overhead)}",
    ]
    total = hooked.median or 1.0
    shown = [mt for mt in r.modules if depth is None or mt.depth <= depth]
    names = ["  " * mt.depth + (mt.name or "(model)") for mt in shown]
    # names shortened from the middle (never a number), to at most NAME_MAX characters
    width = min(max([len(n) for n in names] + [6]), NAME_MAX)
    lines.append(
        f"  {'module':<{width + 1}}{'type':<18}{'calls':>6}{'measured':>12}{'IQR':>11}"
        f"{'share':>8}{'predicted':>12}{'pred/meas':>10}"
    )
    for mt, name in zip(shown, names):
        name = shorten_name(name, width)
        lines.append(
            f"  {name:<{width + 1}}{shorten_name(mt.type, 17):<18}{mt.calls:>6}"
            f"{_s(mt.measured.median):>12}{_s(mt.measured.iqr):>11}"
            f"{_pct(mt.measured.median / total):>8}{_s(mt.predicted_s):>12}"
            f"{_ratio(mt.ratio):>10}"
        )
    return lines


def _per_class_lines(r: MeasureResult) -> list[str]:
    pc = r.per_class
    assert pc is not None
    p = pc.profile
    predicted = "busy time (compute or memory)" if p.device_time else "busy time + overhead"
    tool = p.method.partition(":")[0]
    kernels = any(row.kernels is not None for row in pc.rows)
    w = max([14, *(len(row.kernel_class) + 1 for row in pc.rows)])  # attention-decode: 17
    lines = [
        "",
        f"per kernel class ({tool}, {p.runs} calls; measured: {p.basis}; "
        f"predicted: roofline {predicted})",
        f"  profiled call {_s(p.profiled_s)} vs {_s(r.latency.median)} "
        f"unprofiled; classes sum to {_s(pc.measured_s)}",
        f"  {'class':<{w}}{'records':>8}{'ops':>7}"
        + (f"{'kernels':>9}" if kernels else "")
        + f"{'measured':>12}{'share':>8}{'predicted':>12}{'pred/meas':>10}",
    ]
    total = pc.measured_s or 1.0
    for row in pc.rows:
        lines.append(
            f"  {row.kernel_class:<{w}}{row.records:>8}{row.ops:>7.0f}"
            + (f"{row.kernels or 0:>9.0f}" if kernels else "")
            + f"{_s(row.measured_s):>12}{_pct(row.measured_s / total):>8}"
            f"{_s(row.predicted_s):>12}{_ratio(row.ratio):>10}"
        )
    lines += [f"  note: {n}" for n in [*p.notes, *pc.notes]]
    return lines


def render_measure(result: MeasureResult, fmt: str = "table", *, depth: int | None = 3) -> str:
    """The measurement in one of ``MEASURE_FORMATS``: ``table`` (text; ``depth``: module
    levels shown with per-module timings), ``md`` (the same as Markdown tables) or ``json``
    (``MeasureResult.to_dict()``)."""
    if fmt == "json":
        return dumps(result.to_dict())
    if fmt == "md":
        from modelmeter.render.measure_md import measure_markdown

        return measure_markdown(result, depth, _run_lines(result))
    if fmt == "table":
        return measure_text(result, depth)
    raise unknown_format(fmt, MEASURE_FORMATS)
