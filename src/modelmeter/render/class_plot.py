"""A chart of a measurement's per-class table (``measure --per-class --plot-classes F.png``):
per kernel class, the measured time beside the roofline's, longest first, with pred/meas.
A pure function of a MeasureResult; the file is written whole (a temporary file renamed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelmeter.render.plots import finish_bars, new_figure, save_figure
from modelmeter.units import seconds_unit

if TYPE_CHECKING:
    from modelmeter.analysis.measure import MeasureResult

MEASURED, PREDICTED = "#2ca02c", "#9467bd"


def class_rows(result: MeasureResult) -> list[tuple[str, float, float | None]]:
    """(class, measured s, predicted s or None) for every class measured or predicted,
    the longest (either figure) first."""
    if result.per_class is None:
        raise ValueError("the measurement has no per-class table (measure with per_class)")
    rows = [
        (r.kernel_class, r.measured_s, r.predicted_s)
        for r in result.per_class.rows
        if r.measured_s or r.predicted_s
    ]
    return sorted(rows, key=lambda r: -max(r[1], r[2] or 0.0))


def classes_figure(result: MeasureResult) -> Any:
    """The per-class chart as a matplotlib Figure (nothing is written)."""
    rows = class_rows(result)
    assert result.per_class is not None
    profile = result.per_class.profile
    fig = new_figure(9, 1.9 + 0.42 * max(len(rows), 1))
    ax = fig.add_subplot()
    longest = max((max(r[1], r[2] or 0.0) for r in rows), default=1.0) or 1.0
    scale, unit = seconds_unit(longest)
    y = list(range(len(rows)))[::-1]
    ax.barh([v + 0.2 for v in y], [r[1] / scale for r in rows], height=0.38, color=MEASURED,
            label=f"measured ({profile.basis})")  # fmt: skip
    predicted = [(r[2] or 0.0) / scale for r in rows]
    basis = "busy time" if profile.device_time else "busy time + overhead"
    ax.barh([v - 0.2 for v in y], predicted, height=0.38, color=PREDICTED,
            label=f"roofline ({basis})")  # fmt: skip
    for yi, (_, meas, pred) in zip(y, rows, strict=True):
        if pred is None:
            ratio = "not in the analysis" if meas else ""
        elif not meas:
            ratio = "not profiled (fused?)"
        else:
            ratio = f"pred/meas {pred / meas:.2f}"
        ax.text(max(meas, pred or 0.0) / scale, yi, f"  {ratio}", va="center", fontsize=8)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=9)
    ax.set_xlim(0, longest / scale * 1.3)
    ax.set_xlabel(f"time per call ({unit})")
    hardware = result.prediction.hardware if result.prediction is not None else "no hardware"
    return finish_bars(
        fig,
        ax,
        f"Time per kernel class: {result.model}, batch {result.batch}, {result.dtype}\n"
        f"{result.device} ({result.device_name}) · {profile.runs} profiled calls · "
        f"roofline on {hardware}",
    )


def save_classes(result: MeasureResult, path: str) -> None:
    """Write the per-class chart to ``path`` (PNG)."""
    save_figure(classes_figure(result), path)


__all__ = ["class_rows", "classes_figure", "save_classes"]
