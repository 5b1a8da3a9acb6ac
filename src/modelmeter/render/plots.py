"""Charts of a roofline analysis (PNG, matplotlib's headless Agg canvas, imported lazily).

``save_roofline``: the log-log roofline of the chip with one point per module (its own ops) or
per op, identical ones as one point ``×N``, sized by predicted time and coloured by bound, the
slowest and every ``×N`` point numbered, with a key of their names (``render.plot_labels``).
``save_breakdown``: where the predicted time goes, by block (identical repeated blocks summed),
by module type or by module, each bar split into compute-limited, memory-limited and overhead
time and labelled with its time and share. What they draw is ``render.plot_data``'s. Both
write the file whole (a temporary file renamed) and change nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.breakdown import Ceilings, ceilings
from modelmeter.errors import require
from modelmeter.files import write_file
from modelmeter.render.formats import plot_format
from modelmeter.render.plot_data import breakdown_bars, roofline_points
from modelmeter.render.plot_labels import draw_labels
from modelmeter.units import SHORT_DTYPE, format_peak, format_rate, rate_unit, seconds_unit

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import Report

COLORS = {"compute": "#1f77b4", "memory": "#ff7f0e", "overhead": "#7f7f7f"}
BOUND_TEXT = {
    "compute": "compute-bound",
    "memory": "memory-bound",
    "overhead": "overhead-bound (launch)",
}


def require_matplotlib() -> Any:
    """matplotlib, or MissingDependency naming the ``plot`` extra."""
    return require("matplotlib", "plot", "plotting")


def new_figure(width: float, height: float) -> Any:
    """An empty figure on matplotlib's headless canvas."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str) -> None:
    """Write ``fig`` to ``path`` as PNG, PDF or SVG (by its extension; PNG for another), whole
    (see :func:`modelmeter.files.write_file`)."""
    fmt = plot_format(path) or "png"
    write_file(path, lambda name: fig.savefig(name, format=fmt))


def _rate_unit(value: float) -> tuple[float, str]:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return scale, prefix
    return 1.0, ""


def _dtype(d: str) -> str:
    return SHORT_DTYPE.get(d, d)


def _short(name: str, limit: int = 38) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _title(report: Report, roof: Roofline, what: str) -> str:
    batch = f", batch {roof.batch}" if roof.batch is not None else ""
    return f"{what}: {report.model} on {roof.spec.display_name} ({_dtype(roof.dtype)}{batch})"


def _subtitle(roof: Roofline) -> str:
    scale, unit = seconds_unit(roof.latency_s)
    eff = ""
    if roof.spec.efficiency_compute != 1 or roof.spec.efficiency_memory != 1:
        eff = (
            f" · efficiency compute {roof.spec.efficiency_compute:.2f}, "
            f"memory {roof.spec.efficiency_memory:.2f}"
        )
    unverified = "" if roof.spec.verified else " · UNVERIFIED hardware figures"
    return (
        f"predicted {roof.latency_s / scale:.3g} {unit} · attainable utilization "
        f"{100 * roof.utilization:.1f}% of {format_peak(roof.peak, roof.peak_key)}"
        f"{eff}{unverified}"
    )


def roofline_figure(
    report: Report, roof: Roofline, *, per_op: bool = False, collapse: bool = True
) -> Any:
    """The roofline chart as a matplotlib Figure (nothing is written)."""
    pts = [
        (p.label, p.intensity, p.achieved, p.latency_s, p.bound)
        for p in roofline_points(report, roof, per_op=per_op, collapse=collapse)
    ]
    roofs = ceilings(roof)
    fig = new_figure(13.5, 6.5)
    grid = fig.add_gridspec(1, 2, width_ratios=(3, 1.25))
    ax = fig.add_subplot(grid[0])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ridge = roof.ridge_point
    xs = [p[1] for p in pts] or [ridge]
    lo = min(min(xs), ridge) / 4
    hi = max(max(xs), ridge) * 4
    ys_all = [p[2] for p in pts] + [roofs.peak, roofs.vector, roofs.bandwidth * lo]
    yscale, prefix = _rate_unit(roofs.peak)
    ax.set_xlim(lo, hi)
    ax.set_ylim(max(min(ys_all) / 5, 1e-30) / yscale, roofs.peak * 3 / yscale)
    _draw_roofs(ax, roof, roofs, lo, hi, yscale)
    _draw_points(ax, pts, yscale)
    draw_labels(ax, fig.add_subplot(grid[1]), pts, yscale)
    hidden = _hidden(roof, per_op)
    what = "op" if per_op else "module (its own ops)"
    note = f"one point per {what}; marker area ∝ predicted time; numbers: the key"
    if collapse and any(" ×" in p[0] for p in pts):
        note += "; ×N: N identical ones, summed"
    if hidden:
        note += f"; {hidden} without FLOPs not shown"
    ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, color="dimgray")
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved, unfused)")
    ax.set_ylabel(f"predicted performance ({prefix}{rate_unit(roof.peak_key)}: FLOPs / "
                  "predicted time)")  # fmt: skip
    ax.set_title(_title(report, roof, "Predicted roofline") + "\n" + _subtitle(roof), fontsize=10)
    ax.grid(True, which="major", ls="-", lw=0.4, alpha=0.5)
    ax.grid(True, which="minor", ls=":", lw=0.3, alpha=0.3)
    legend = ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])
    return fig


def _draw_roofs(
    ax: Any, roof: Roofline, roofs: Ceilings, lo: float, hi: float, yscale: float
) -> None:
    """The memory slope up to the ridge, then the matrix peak; the vector peak dashed; the
    datasheet's roofline dotted when efficiencies derate it; the ridge point marked."""
    peak, bw, ridge = roofs.peak, roofs.bandwidth, roof.ridge_point
    ax.plot(
        [lo, ridge, hi],
        [bw * lo / yscale, peak / yscale, peak / yscale],
        color="black",
        lw=2,
        label=f"roofline: {format_rate(bw, 'B/s')} x intensity, then the "
        f"{_dtype(roof.dtype)} MAC peak {format_peak(peak, roof.peak_key)} "
        f"({roof.peak_key})",
    )
    if roofs.vector < peak:
        ax.plot(
            [max(roofs.vector_ridge, lo), hi],
            [roofs.vector / yscale] * 2,
            color="black",
            lw=1,
            ls="--",
            label=f"vector peak {format_rate(roofs.vector)} ({roofs.vector_key}): non-MAC ops",
        )
    if roofs.derated:
        ax.plot(
            [lo, roofs.nominal_ridge, hi],
            [roofs.nominal_bandwidth * lo / yscale, roofs.nominal_peak / yscale,
             roofs.nominal_peak / yscale],
            color="black",
            lw=1,
            ls=":",
            label="nominal peak (datasheet)",
        )  # fmt: skip
    ax.axvline(ridge, color="gray", ls=":", lw=1)
    ax.annotate(
        f"ridge point {ridge:.3g} FLOP/B",
        (ridge, 0.03),
        xycoords=("data", "axes fraction"),
        xytext=(-4, 0),
        textcoords="offset points",
        rotation=90,
        ha="right",
        va="bottom",
        fontsize=8,
        color="dimgray",
    )


def _draw_points(ax: Any, pts: list[Any], yscale: float) -> None:
    """One marker per point, sized by predicted time and coloured by bound (the names:
    ``render.plot_labels``)."""
    biggest = max((p[3] for p in pts), default=1.0)
    for bound in ("compute", "memory", "overhead"):
        sel = [p for p in pts if p[4] == bound]
        if not sel:
            continue
        ax.scatter(
            [p[1] for p in sel],
            [p[2] / yscale for p in sel],
            s=[12 + 400 * p[3] / biggest for p in sel],
            c=COLORS[bound],
            alpha=0.6,
            edgecolors="white",
            linewidths=0.5,
            label=f"{BOUND_TEXT[bound]} ({len(sel)})",
        )


def _hidden(roof: Roofline, per_op: bool) -> int:
    items: Iterable[Any] = roof.ops if per_op else [m for m in roof.own.values() if m.kernels]
    return sum(1 for t in items if not (t.flops and t.bytes))


GROUP_TEXT = {
    "block": "block (each module's own ops; ×N: N identical repeated blocks, summed)",
    "type": "module type (own ops of every module of the type, summed)",
    "module": "module (own ops)",
}


def breakdown_figure(
    report: Report, roof: Roofline, *, top: int = 20, group: str = "block"
) -> Any:
    """Where the predicted time goes, as a matplotlib Figure (nothing is written)."""
    bars, count = breakdown_bars(report, roof, top, group)
    fig = new_figure(10, 1.8 + 0.32 * max(len(bars), 1))
    ax = fig.add_subplot()
    longest = max((b.total_s for b in bars), default=roof.latency_s) or 1.0
    scale, unit = seconds_unit(longest)
    y = list(range(len(bars)))[::-1]
    left = [0.0] * len(bars)
    parts = ("compute-limited", "memory-limited", "kernel overhead")
    for key, name in zip(("compute", "memory", "overhead"), parts):
        widths = [getattr(b, f"{key}_s") / scale for b in bars]
        ax.barh(y, widths, left=left, color=COLORS[key], label=f"predicted {name}", height=0.7)
        left = [a + w for a, w in zip(left, widths)]
    total = roof.latency_s or 1.0
    for yi, b, x in zip(y, bars, left):
        ax.text(x, yi, " " + bar_text(b, total, scale, unit), va="center", fontsize=7)
    ax.set_yticks(y, [_short(b.label, 60) for b in bars], fontsize=7)
    ax.set_xlim(0, max(left, default=1) * 1.25 or 1)
    ax.set_xlabel(
        f"predicted time ({unit}); each op: max(compute, memory) + overhead"
        + (" (its wait for launch)" if roof.spec.launches_overlap else "")
    )
    shown = sum(b.total_s for b in bars)
    which = f"the {len(bars)} slowest of {count}" if len(bars) < count else f"all {count}"
    return finish_bars(
        fig,
        ax,
        f"Predicted time by {GROUP_TEXT[group]}\n{which}, {100 * shown / total:.1f}% of the "
        f"predicted total · {_title(report, roof, 'Breakdown')}\n{_subtitle(roof)}",
    )


def bar_text(bar: Any, total: float, scale: float, unit: str) -> str:
    """The label at the end of a bar: its predicted time and share of the latency."""
    return f"{bar.total_s / scale:.3g} {unit} ({100 * bar.total_s / total:.1f}%)"


def finish_bars(fig: Any, ax: Any, title: str) -> Any:
    """Title, legend and grid of a horizontal bar chart; returns the figure."""
    fig.suptitle(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, axis="x", lw=0.4, alpha=0.5)
    return fig


def save_roofline(
    report: Report, roof: Roofline, path: str, *, per_op: bool = False, collapse: bool = True
) -> None:
    """Write the roofline chart to ``path`` (PNG, PDF or SVG by its extension)."""
    save_figure(roofline_figure(report, roof, per_op=per_op, collapse=collapse), path)


def save_breakdown(
    report: Report, roof: Roofline, path: str, *, top: int = 20, group: str = "block"
) -> None:
    """Write the breakdown of the predicted time to ``path`` (PNG, PDF or SVG)."""
    save_figure(breakdown_figure(report, roof, top=top, group=group), path)


__all__ = [
    "require_matplotlib",
    "roofline_figure",
    "breakdown_figure",
    "save_roofline",
    "save_breakdown",
]
