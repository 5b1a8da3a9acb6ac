"""The charts of the HTML report, drawn as inline SVG (no library): the roofline chart, one
point per module's own ops (the modules' own times partition the model's, as in
``plot_data.roofline_points(collapse=False)``), and the bar of the time split by bound.

Axes are log-log: arithmetic intensity (FLOP per byte moved) against achieved FLOP/s (FLOPs /
predicted latency). The roof is the nominal peak and bandwidth (dashed) and the attainable
one (the spec's efficiencies applied). A point's ``<title>`` (the browser's hover text) names
the module and its figures; ``data-module`` holds its qualified name.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from modelmeter.analysis.roofline_times import BOUNDS
from modelmeter.units import format_bytes, format_count, format_rate, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.analysis.roofline_times import ModuleTime
    from modelmeter.report import ModuleNode, Report

W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 45


def chart_points(report: Report, roof: Roofline) -> list[tuple[str, ModuleTime]]:
    """(module name, own time) of every module whose own ops have FLOPs, bytes and time."""
    out = []
    for node in report.modules():
        mt = roof.own.get(node.name)
        if mt is not None and mt.kernels and mt.flops and mt.bytes and mt.latency_s:
            out.append((node.name, mt))
    return out


def _decades(lo: float, hi: float) -> tuple[int, int]:
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return a, max(b, a + 1)


class _Axes:
    """Maps (intensity, FLOP/s) to SVG coordinates over whole decades."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.x0, self.x1 = _decades(min(xs), max(xs))
        self.y0, self.y1 = _decades(min(ys), max(ys))

    def x(self, v: float) -> float:
        f = (math.log10(v) - self.x0) / (self.x1 - self.x0)
        return LEFT + f * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        f = (math.log10(v) - self.y0) / (self.y1 - self.y0)
        return H - BOTTOM - f * (H - TOP - BOTTOM)


def _grid(ax: _Axes) -> list[str]:
    out = []
    for e in range(ax.x0, ax.x1 + 1):
        x = ax.x(10.0**e)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{H - BOTTOM}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">1e{e}</text>')
    for e in range(ax.y0, ax.y1 + 1):
        y = ax.y(10.0**e)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">'
        "arithmetic intensity (FLOP/B)</text>"
        f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">achieved FLOP/s</text>'
    )
    return out


def _roof(ax: _Axes, peak: float, bandwidth: float, style: str) -> str:
    """The roof min(peak, bandwidth x intensity) across the chart, as one polyline."""
    lo, hi = 10.0**ax.x0, 10.0**ax.x1
    ridge = peak / bandwidth
    pts = [(lo, min(peak, bandwidth * lo))]
    if lo < ridge < hi:
        pts.append((ridge, peak))
    pts.append((hi, min(peak, bandwidth * hi)))
    ymin = 10.0**ax.y0
    text = " ".join(f"{ax.x(x):.1f},{ax.y(max(y, ymin)):.1f}" for x, y in pts)
    return f'<polyline points="{text}" fill="none" stroke="#333" {style}/>'


def _tip(report: Report, node: ModuleNode, mt: ModuleTime, total_s: float) -> str:
    name = node.name
    share = 100.0 * mt.latency_s / total_s if total_s else 0.0
    own = ", own ops" if node.children else ""
    return (
        f"{name or report.model} ({node.type}{own})\n"
        f"FLOPs {format_count(mt.flops)} · bytes {format_bytes(mt.bytes)} · "
        f"{mt.arithmetic_intensity:.2f} FLOP/B\n"
        f"latency {format_seconds(mt.latency_s)} ({share:.1f}% of the model) · "
        f"{mt.bound}-bound · achieved {format_rate(mt.achieved)}"
    )


def roofline_svg(report: Report, roof: Roofline) -> str:
    """The roofline chart as one ``<svg>`` element (empty string when nothing can be placed)."""
    points = chart_points(report, roof)
    spec = roof.spec
    peak_att = roof.peak * spec.efficiency_compute
    bw_att = spec.bandwidth * spec.efficiency_memory
    if not points or not roof.peak or not spec.bandwidth:
        return ""
    xs = [mt.arithmetic_intensity for _, mt in points] + [roof.ridge_point]
    ys = [mt.achieved for _, mt in points] + [roof.peak]
    ax = _Axes(xs, ys)
    total_s = roof.latency_s
    nodes = {n.name: n for n in report.modules()}
    out = [
        f'<svg class="mm-roofline" xmlns="http://www.w3.org/2000/svg" width="{W}" '
        f'height="{H}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="roofline chart of {escape(report.model)}">',
        *_grid(ax),
        _roof(ax, roof.peak, spec.bandwidth, 'stroke-dasharray="4 3" stroke-opacity=".5"'),
        _roof(ax, peak_att, bw_att, 'stroke-width="1.5"'),
    ]
    for name, mt in sorted(points, key=lambda p: -p[1].latency_s):  # small points on top
        r = 3.0 + 9.0 * math.sqrt(mt.latency_s / total_s) if total_s else 4.0
        out.append(
            f'<circle class="mm-pt b-{escape(mt.bound)}" data-module="{escape(name)}" '
            f'cx="{ax.x(mt.arithmetic_intensity):.1f}" cy="{ax.y(mt.achieved):.1f}" '
            f'r="{r:.1f}"><title>{escape(_tip(report, nodes[name], mt, total_s))}</title></circle>'
        )
    out.append("</svg>")
    return "".join(out)


def bound_bar(roof: Roofline) -> str:
    """The predicted latency split by the bound of its kernels, as a flex bar of shares."""
    t, lat = roof.total, roof.latency_s
    parts, legend = [], []
    for b in BOUNDS:
        secs = getattr(t, f"{b}_bound_s")
        share = 100.0 * secs / lat if lat else 0.0
        label = f"{b}-bound {format_seconds(secs)} ({share:.1f}%)"
        parts.append(
            f'<span class="b-{b}" style="width:{share:.3f}%" title="{escape(label)}"></span>'
        )
        legend.append(f'<span class="b-{b}" data-v="{secs!r}">{escape(label)}</span>')
    return (
        '<div class="mm-bar">'
        + "".join(parts)
        + '</div><p class="mm-legend">'
        + "".join(legend)
        + "</p>"
    )


__all__ = ["bound_bar", "chart_points", "roofline_svg"]
