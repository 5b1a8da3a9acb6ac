"""The roofline summary block of the table, markdown and HTML reports: (label, value) lines
that say which chip and figures priced the model, the peak beside the one that priced it, the
ridge point, the predicted latency and how it splits. Pure functions of a Roofline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.pricing import figures_line
from modelmeter.units import format_peak, format_rate, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.hardware.spec import HardwareSpec

# what the efficiency fractions are fractions of, by the figures that priced the model
EFFICIENCY_WORDS = {
    "attainable": "fractions of the attainable figures, applied",
    "datasheet": "fractions of the datasheet figures, applied",
    "ideal": "--ideal: the datasheet figures at full efficiency",
}


def _launch_text(spec: HardwareSpec) -> str:
    """`` + launch 1.10 us per kernel`` (and the range per class where a class has its own)."""
    if not (spec.launch_s or spec.launch_classes):
        return ""
    text = f" + launch {format_seconds(spec.launch_s)} per kernel"
    if spec.launch_classes:
        hi = max(spec.launch_classes.items(), key=lambda kv: kv[1])
        text += (f" ({len(spec.launch_classes)} classes their own, up to "
                 f"{format_seconds(hi[1])} per {hi[0]} op)")
    return text


def priced_text(roofline: Roofline) -> str:
    """`` · priced at 51.59 TFLOP/s (attainable compute.float32)`` where the ops were priced
    at another matrix peak than the datasheet's reference one (empty where the same)."""
    if not roofline.priced_peak_key or (roofline.priced_peak == roofline.peak
                                        and roofline.priced_peak_key == roofline.peak_key):
        return ""
    return (f" · priced at {format_peak(roofline.priced_peak, roofline.dtype)} "
            f"({roofline.figures} {roofline.priced_peak_key})")


def peak_line(roofline: Roofline) -> str:
    """The datasheet peak, the priced one, the bandwidth and the host's and device's per-op
    times (the eager per-module-call time where it is charged)."""
    spec, dtype, runtime = roofline.spec, roofline.dtype, roofline.runtime
    calls = spec.module_call_s if runtime == "eager" else 0.0
    return (
        f"{format_peak(roofline.peak, roofline.peak_key)} {dtype} ({roofline.peak_key}, "
        f"datasheet){priced_text(roofline)} · bandwidth {format_rate(spec.bandwidth, 'B/s')} · "
        f"host {format_seconds(spec.host_overhead(dtype, runtime))} per {dtype} op ({runtime}"
        + ("; launches overlap execution)" if spec.launches_overlap else ")")
        + (f" + {format_seconds(calls)} per module call (eager)" if calls else "")
        + _launch_text(spec)
    )


def ridge_line(roofline: Roofline) -> str:
    """The ridge point with what it divides: the priced peak (x the compute efficiency) by
    the bandwidth (x the memory efficiency)."""
    spec = roofline.spec
    peak = roofline.priced_peak or roofline.peak
    ec, em = spec.efficiency_compute, spec.efficiency_memory
    top = f"priced peak {format_peak(peak, roofline.dtype)}" + (f" x {ec:.2f}" if ec != 1 else "")
    bottom = f"bandwidth {format_rate(spec.bandwidth, 'B/s')}" + (f" x {em:.2f}" if em != 1 else "")
    return (f"{roofline.ridge_point:.1f} FLOP/B ({top} / {bottom}); model arithmetic "
            f"intensity {roofline.total.arithmetic_intensity:.2f} FLOP/B")


def roofline_lines(roofline: Roofline) -> list[tuple[str, str]]:
    """(label, value) lines of the roofline summary (hardware, peaks, ridge, latency ...)."""
    spec, t = roofline.spec, roofline.total
    checked = "verified figures" if spec.verified else "UNVERIFIED figures"
    peak = format_peak(roofline.peak, roofline.peak_key)
    lat = roofline.latency_s

    def share(part: float) -> str:
        return f"{100.0 * part / lat:.1f}%" if lat else "-"

    lines = [
        ("hardware", f"{spec.display_name} ({spec.name}) · {spec.kind} · {checked}"),
        ("source", spec.source or "-"),
        ("figures", figures_line(roofline)),
        ("peak", peak_line(roofline)),
        ("efficiency", f"compute {spec.efficiency_compute:.2f} x peak · memory "
         f"{spec.efficiency_memory:.2f} x bandwidth "
         f"({EFFICIENCY_WORDS.get(roofline.figures, roofline.figures)})"),
        ("ridge point", ridge_line(roofline)),
        ("predicted latency", f"{format_seconds(lat)} over {t.kernels} kernels, each max(compute, "
         "memory) + " + ("the wait for its launch" if spec.launches_overlap else "overhead")),
        (  # sums of every kernel's own times: not shares of the latency (the max hides one)
            "kernel times",
            f"summed over kernels, compute {format_seconds(t.compute_s)} · memory "
            f"{format_seconds(t.memory_s)} · overhead {format_seconds(t.overhead_s)} (the "
            "smaller of a kernel's compute and memory time is hidden under the larger)",
        ),
        ("time by bound", " · ".join(
            f"{b}-bound {share(getattr(t, f'{b}_bound_s'))} ({getattr(t, f'{b}_bound')} "
            + ("kernel)" if getattr(t, f"{b}_bound") == 1 else "kernels)")
            for b in ("compute", "memory", "overhead")) + " of the predicted latency"),
    ]
    if roofline.throughput is not None:
        lines.append(("throughput", f"{roofline.throughput:,.1f} samples/s at batch "
                      f"{roofline.batch} · achieved {format_rate(roofline.achieved)}"))
    lines.append(("utilization", f"{100.0 * roofline.utilization:.1f}% of the {peak} peak "
                  "(attainable: FLOPs / predicted latency / peak)"))
    lines += [("roofline note", note) for note in roofline.notes]
    return lines


__all__ = ["peak_line", "priced_text", "ridge_line", "roofline_lines"]
