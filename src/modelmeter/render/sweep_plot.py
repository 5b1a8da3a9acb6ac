"""The chart of a sweep: MACs, FLOPs and bytes moved against the swept size (log-log), one line
per value of the other sizes; with a chip, a second panel of the predicted latency. PNG, PDF
or SVG through matplotlib's headless canvas (imported lazily)."""

from __future__ import annotations

import itertools

from modelmeter.analysis.sweep import SweepResult, SweepRow
from modelmeter.render.plots import new_figure, save_figure

SERIES = (("macs", "MACs", "-"), ("flops", "FLOPs", "--"), ("bytes", "bytes moved", ":"))


def x_variable(result: SweepResult) -> str:
    """The size drawn along the x axis: the one with the most values (the first on a tie)."""
    counts = {v: len({r.point[v] for r in result.rows}) for v in result.variables}
    return max(result.variables, key=lambda v: counts[v])


def _value(row: SweepRow, key: str) -> int:
    t = row.totals
    return t["bytes_read"] + t["bytes_written"] if key == "bytes" else t[key]


def _groups(result: SweepResult, x: str) -> list[tuple[str, list[SweepRow]]]:
    others = [v for v in result.variables if v != x]

    def key(r: SweepRow) -> tuple[int, ...]:
        return tuple(r.point[v] for v in others)

    out = []
    for k, rows in itertools.groupby(sorted(result.rows, key=key), key=key):
        label = ", ".join(f"{v}={n}" for v, n in zip(others, k))
        out.append((label, sorted(rows, key=lambda r: r.point[x])))
    return out


def save_sweep_plot(result: SweepResult, path: str) -> None:
    """Write the chart to ``path`` (its extension picks PNG, PDF or SVG)."""
    chip = result.chip is not None
    fig = new_figure(10, 8 if chip else 5.5)
    axes = [fig.add_subplot(2 if chip else 1, 1, i + 1) for i in range(2 if chip else 1)]
    x = x_variable(result)
    groups = _groups(result, x)
    colors = [f"C{i % 10}" for i in range(len(groups))]
    cost = axes[0]
    for (label, rows), color in zip(groups, colors):
        xs = [r.point[x] for r in rows]
        for key, name, style in SERIES:
            tag = f"{name} ({label})" if label else name
            cost.plot(xs, [_value(r, key) for r in rows], style, color=color, marker="o",
                      markersize=3, label=tag)  # fmt: skip
    cost.set_ylabel("count / bytes")
    cost.set_title(f"{result.model}: cost against {x}")
    if chip:
        lat = axes[1]
        for (label, rows), color in zip(groups, colors):
            pts = [(r.point[x], r.latency_s) for r in rows if r.latency_s]
            lat.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=color, marker="o",
                     markersize=3, label=label or "latency")  # fmt: skip
        lat.set_ylabel("predicted latency (s)")
        lat.set_title(f"predicted on {result.chip} (roofline)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


__all__ = ["save_sweep_plot", "x_variable"]
