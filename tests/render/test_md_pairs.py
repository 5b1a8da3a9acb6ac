"""-f md of utilization and hardware show: the same (label, value) lines as the text table,
as a two-column Markdown table."""

from __future__ import annotations

from modelmeter.analysis.utilization import utilization
from modelmeter.hardware import load_spec
from modelmeter.render.hardware import render_hardware_show, show_lines
from modelmeter.render.utilization import render_utilization, utilization_lines
from modelmeter.report import Report


def pairs(md: str) -> list[tuple[str, str]]:
    rows = [s for s in md.splitlines() if s.startswith("| ")][1:]
    return [tuple(c.strip().replace("\\|", "|") for c in r[2:-2].split(" | ", 1)) for r in rows]


def test_utilization_md(handmade: Report) -> None:
    u = utilization(handmade, load_spec("t4"), 1e-3)
    md = render_utilization(handmade, u, "md")
    assert md.startswith("# Utilization: handmade\n")
    assert pairs(md) == utilization_lines(handmade, u)


def test_hardware_show_md() -> None:
    spec = load_spec("t4")
    md = render_hardware_show(spec, "md")
    assert md.startswith("# NVIDIA T4 16GB\n") and "| Field | Value |" in md
    assert pairs(md) == show_lines(spec)
