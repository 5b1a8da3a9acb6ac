"""A measurement as GitHub-flavoured Markdown (``measure -f md``): the run, the prediction
beside the measurement, the per-module and per-class tables; the same figures as the text
table (``render.measure``), as Markdown tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render._common import md_cell
from modelmeter.units import format_percent as _pct
from modelmeter.units import format_ratio as _ratio
from modelmeter.units import format_timing as _s

if TYPE_CHECKING:
    from modelmeter.analysis.measure import MeasureResult

LABEL = 12  # the text table's label column (``latency     ...``)


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return out


def measure_markdown(r: MeasureResult, depth: int | None, run_lines: list[str]) -> str:
    """``run_lines``: the text table's first section (label in the first LABEL columns)."""
    pairs = [[s[:LABEL].strip(), s[LABEL:].strip()] for s in run_lines if s.strip()]
    out = [f"# Measured: {md_cell(r.model)}", "", *_table(["Quantity", "Value"], pairs, set())]
    p = r.prediction
    if p is not None:
        rows = [
            ["roofline latency", _s(p.latency_s), _s(r.latency.median), _ratio(r.ratio)],
            ["compute", _s(p.compute_s), "", ""],
            ["memory", _s(p.memory_s), "", ""],
            ["overhead", _s(p.overhead_s), "", ""],
            ["FLOPs / peak only", _s(p.flops_only_s), "", _ratio(r.flops_only_ratio)],
        ]
        out += ["", f"## Predicted vs measured on {md_cell(p.hardware)}", ""]
        out += _table(["", "Predicted", "Measured", "Pred/meas"], rows, {1, 2, 3})
        out += ["", f"Bound: {p.bound}. Predicted by the roofline model, not measured."]
    if r.hooked is not None:
        total = r.hooked.median or 1.0
        rows = [
            [m.name or r.model, m.type, str(m.calls), _s(m.measured.median),
             _s(m.measured.iqr), _pct(m.measured.median / total), _s(m.predicted_s),
             _ratio(m.ratio)]
            for m in r.modules
            if depth is None or m.depth <= depth
        ]  # fmt: skip
        out += ["", "## Per module", "", "Forward hooks synchronise the device around every "
                f"module call; times include children. With hooks {_s(r.hooked.median)} vs "
                f"{_s(r.latency.median)} without.", ""]  # fmt: skip
        header = ["Module", "Type", "Calls", "Measured", "IQR", "Share", "Predicted", "Pred/meas"]
        out += _table(header, rows, {2, 3, 4, 5, 6, 7})
    if r.per_class is not None:
        pc = r.per_class
        total = pc.measured_s or 1.0
        rows = [
            [c.kernel_class, str(c.records), f"{c.ops:.0f}", _s(c.measured_s),
             _pct(c.measured_s / total), _s(c.predicted_s), _ratio(c.ratio)]
            for c in pc.rows
        ]  # fmt: skip
        out += ["", "## Per kernel class", ""]
        header = ["Class", "Records", "Ops", "Measured", "Share", "Predicted", "Pred/meas"]
        out += _table(header, rows, {1, 2, 3, 4, 5, 6})
    if r.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in r.notes)]
    return "\n".join(out) + "\n"
