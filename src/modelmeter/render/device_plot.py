"""The chart of a training step against the number of devices (``modelmeter train --plot
FILE``): a device's memory by category, stacked, with the chip's capacity as a dashed line; and
the predicted step time and tokens per second per device. ``device_series`` is what is drawn
(a pure function of :class:`~modelmeter.analysis.device_sweep.DeviceSweep`);
``save_device_plot`` draws it and writes the file (PNG, PDF or SVG by its extension).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmeter.render.plots import new_figure, save_figure

if TYPE_CHECKING:
    from modelmeter.analysis.device_sweep import DeviceSweep

GB = 1e9
CATEGORIES = ("weights", "buffers", "gradients", "optimizer", "activations", "gathered weights")
COLORS = {"weights": "#1f77b4", "buffers": "#9467bd", "gradients": "#2ca02c",
          "optimizer": "#ff7f0e", "activations": "#8c564b",
          "gathered weights": "#17becf"}  # fmt: skip
TIME, RATE, LIMIT = "#1f77b4", "#ff7f0e", "#d62728"


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """The chart's data: device counts; per category a device's GB at each; the capacity in
    GB; step time in ms and throughput per device (None where no chip prices the step)."""

    devices: tuple[int, ...]
    memory_gb: dict[str, tuple[float, ...]]
    capacity_gb: float | None
    step_ms: tuple[float | None, ...]
    throughput: tuple[float | None, ...]
    unit: str
    title: str
    peak_gb: tuple[float | None, ...] = ()  # the step's peak on one device


def device_series(s: DeviceSweep) -> DeviceSeries:
    """What ``save_device_plot`` draws (categories no device count holds are left out)."""
    memory = {c: tuple(p.memory[c] / GB for p in s.points) for c in CATEGORIES
              if any(p.memory[c] for p in s.points)}  # fmt: skip
    plan = f"ZeRO-{s.zero}"
    if s.tensor > 1:
        plan += f", tensor {s.tensor}"
    if s.sequence_parallel:
        plan += ", sequence parallel"
    if s.pipeline > 1:
        plan += f", pipeline {s.pipeline}"
        plan += f" x {s.virtual} virtual" if s.virtual > 1 else f" {s.schedule.upper()}"
    return DeviceSeries(
        devices=tuple(p.devices for p in s.points),
        memory_gb=memory,
        capacity_gb=None if s.capacity is None else s.capacity / GB,
        step_ms=tuple(None if p.step_s is None else p.step_s * 1e3 for p in s.points),
        throughput=tuple(p.throughput for p in s.points),
        unit=s.unit,
        title=f"{s.model} training step on {s.chip or 'no chip'} ({plan})",
        peak_gb=tuple(None if p.peak is None else p.peak / GB for p in s.points),
    )


def _memory(ax: Any, d: DeviceSeries) -> None:
    ax.stackplot(d.devices, *d.memory_gb.values(), labels=list(d.memory_gb),
                 colors=[COLORS[c] for c in d.memory_gb], alpha=0.85)  # fmt: skip
    if d.capacity_gb is not None:
        ax.axhline(d.capacity_gb, color=LIMIT, ls="--", lw=1.5,
                   label=f"capacity {d.capacity_gb:,.0f} GB")  # fmt: skip
    px = [x for x, v in zip(d.devices, d.peak_gb, strict=False) if v is not None]
    if px:
        ax.plot(px, [v for v in d.peak_gb if v is not None], "k.-", lw=1, ms=3,
                label="peak of the step")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("devices")
    ax.set_ylabel("memory per device (GB)")
    ax.set_title("memory per device (activations: what it holds at once)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(True, alpha=0.3)


def _time(ax: Any, d: DeviceSeries) -> None:
    xs = [x for x, t in zip(d.devices, d.step_ms, strict=True) if t is not None]
    ax.plot(xs, [t for t in d.step_ms if t is not None], "o-", color=TIME, ms=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("devices")
    ax.set_ylabel("predicted step time (ms)", color=TIME)
    twin = ax.twinx()
    rx = [x for x, r in zip(d.devices, d.throughput, strict=True) if r is not None]
    twin.plot(rx, [r for r in d.throughput if r is not None], "s--", color=RATE, ms=3)
    twin.set_ylabel(f"{d.unit} per device", color=RATE)
    ax.set_title("step time and throughput per device", fontsize=9)
    ax.grid(True, alpha=0.3)


def save_device_plot(s: DeviceSweep, path: str) -> None:
    """Two panels, memory and time, against the devices; write ``path``."""
    d = device_series(s)
    fig = new_figure(11, 4.2)
    left, right = fig.subplots(1, 2)
    _memory(left, d)
    _time(right, d)
    fig.suptitle(d.title, fontsize=10)
    save_figure(fig, path)


__all__ = ["DeviceSeries", "device_series", "save_device_plot"]
