"""The charts of the HTML report, drawn as inline SVG (no library): the roofline chart, one
point per module's own ops, with identical repeated modules (same type, output shapes and own
cost) one point ``×N`` at their summed FLOPs over summed time, as the PNG chart draws them
(``plot_data.roofline_points``; ``collapse=False``: one point per module), and the bar of the
time split by bound.

Axes are log-log: arithmetic intensity (FLOP per byte moved) against achieved FLOP/s (FLOPs /
predicted latency). The roof is the nominal peak and bandwidth (dashed) and the attainable
one (the spec's efficiencies applied). A point's ``<title>`` (the browser's hover text) names
the module(s), ``×N`` and its figures; ``data-module`` holds the first member's qualified
name and ``data-rows`` the ``data-id`` of every member's row in the module tree (the page's
script highlights them on hover and marks them on a click).
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from modelmeter.analysis.roofline_times import BOUNDS
from modelmeter.render.plot_data import Point, roofline_points
from modelmeter.units import format_bytes, format_count, format_rate, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import Report

W, H = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 45


def chart_points(report: Report, roof: Roofline, collapse: bool = True) -> list[Point]:
    """The points of the modules whose own ops have FLOPs, bytes and time (identical ones
    one point with ``collapse``), in the order of the module tree."""
    order = {n.name: i for i, n in enumerate(report.modules())}
    points = roofline_points(report, roof, collapse=collapse)
    return sorted(points, key=lambda p: order.get(p.members[0], len(order)))


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


def _tip(roof: Roofline, p: Point, total_s: float) -> str:
    """The hover text: the label (``×N``), the members when several, the summed figures."""
    share = 100.0 * p.latency_s / total_s if total_s else 0.0
    flops = sum(roof.own[m].flops for m in p.members)
    moved = sum(roof.own[m].bytes for m in p.members)
    members = f"{p.count} identical modules: {', '.join(p.members)}\n" if p.count > 1 else ""
    each = " in all" if p.count > 1 else ""
    return (
        f"{p.label}\n{members}"
        f"FLOPs {format_count(flops)} · bytes {format_bytes(moved)}{each} · "
        f"{p.intensity:.2f} FLOP/B\n"
        f"latency {format_seconds(p.latency_s)}{each} ({share:.1f}% of the model) · "
        f"{p.bound}-bound · achieved {format_rate(p.achieved)}"
    )


def roofline_svg(report: Report, roof: Roofline, collapse: bool = True) -> str:
    """The roofline chart as one ``<svg>`` element (empty string when nothing can be placed)."""
    points = chart_points(report, roof, collapse)
    spec = roof.spec
    peak_att = roof.peak * spec.efficiency_compute
    bw_att = spec.bandwidth * spec.efficiency_memory
    if not points or not roof.peak or not spec.bandwidth:
        return ""
    xs = [p.intensity for p in points] + [roof.ridge_point]
    ys = [p.achieved for p in points] + [roof.peak]
    ax = _Axes(xs, ys)
    total_s = roof.latency_s
    ids = {n.name: i for i, n in enumerate(report.modules())}  # the tree's row ids
    out = [
        f'<svg class="mm-roofline" xmlns="http://www.w3.org/2000/svg" width="{W}" '
        f'height="{H}" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="roofline chart of {escape(report.model)}">',
        *_grid(ax),
        _roof(ax, roof.peak, spec.bandwidth, 'stroke-dasharray="4 3" stroke-opacity=".5"'),
        _roof(ax, peak_att, bw_att, 'stroke-width="1.5"'),
    ]
    for p in sorted(points, key=lambda p: -p.latency_s):  # small points on top
        r = 3.0 + 9.0 * math.sqrt(p.latency_s / total_s) if total_s else 4.0
        rows = " ".join(str(ids[m]) for m in p.members if m in ids)
        out.append(
            f'<circle class="mm-pt b-{escape(p.bound)}" data-module="{escape(p.members[0])}" '
            f'data-count="{p.count}" data-rows="{rows}" '
            f'cx="{ax.x(p.intensity):.1f}" cy="{ax.y(p.achieved):.1f}" '
            f'r="{r:.1f}"><title>{escape(_tip(roof, p, total_s))}</title></circle>'
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
