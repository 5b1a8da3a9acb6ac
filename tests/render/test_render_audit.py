"""The output audit's findings: bracketed free text survives rich tables, the peak line shows
the figures that priced the ops, the footers and notes say which runtime and figures."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec
from modelmeter.render.hardware import render_hardware_show
from modelmeter.render.roofline_summary import roofline_lines
from modelmeter.render.table import render_table
from modelmeter.report import Report


@pytest.fixture(scope="module")
def linear() -> Report:
    return modelmeter.analyze(torch.nn.Linear(64, 32), "1x64", mode="meta")


def test_bracketed_text_survives_the_table(linear: Report) -> None:
    # a datasheet-only spec: the figures line says "no [attainable] section"
    text = render_table(linear, roofline=roofline(linear, load_spec("epyc-9654")))
    assert "(no [attainable] section)" in text
    marked = replace(linear, notes=[*linear.notes, "see [attainable] and [bold]x[/bold]"])
    assert "see [attainable] and [bold]x[/bold]" in render_table(marked)


def test_bracketed_notes_survive_hardware_show() -> None:
    spec = replace(load_spec("h100-sxm"), notes="[compute] best matmul, [overhead.runtimes] x")
    assert "[compute] best matmul, [overhead.runtimes] x" in render_hardware_show(spec)


def test_the_peak_line_shows_the_priced_peak_and_the_ridge_what_it_divides(linear: Report) -> None:
    roof = roofline(linear, load_spec("h100-sxm"))
    lines = dict(roofline_lines(roof))
    # h100-sxm.toml: [attainable.compute] float32 = "51.59T" priced the float32 MACs; the
    # datasheet's reference is vector.float32 67 TFLOP/s (no float32 matrix peak)
    assert "67.00 TFLOP/s float32 (vector.float32, datasheet)" in lines["peak"]
    assert "priced at 51.59 TFLOP/s (attainable compute.float32)" in lines["peak"]
    # 51.59e12 / 3.004e12 (the attainable bandwidth) = 17.17 FLOP/B
    assert roof.ridge_point == pytest.approx(51.59e12 / roof.spec.bandwidth)
    assert lines["ridge point"].startswith("17.2 FLOP/B (priced peak 51.59 TFLOP/s / bandwidth ")
    d = roof.to_dict()
    assert d["priced_peak_flops_per_s"] == pytest.approx(51.59e12)
    assert d["priced_peak_key"] == "compute.float32"
    assert d["peak_key"] == "vector.float32"  # the reference stays what it was


def test_no_priced_peak_part_where_it_is_the_datasheet_one(linear: Report) -> None:
    roof = roofline(linear, load_spec("h100-sxm"), ideal=True)
    assert "priced at" not in dict(roofline_lines(roof))["peak"]
    assert roof.to_dict()["priced_peak_flops_per_s"] == roof.peak  # 67e12 both


@pytest.mark.parametrize(("chip", "ideal", "words"), [
    ("h100-sxm", False, "(fractions of the attainable figures, applied)"),
    ("h100-sxm", True, "(--ideal: the datasheet figures at full efficiency)"),
    ("epyc-9654", False, "(fractions of the datasheet figures, applied)"),
])
def test_the_efficiency_line_names_the_figures(linear: Report, chip: str, ideal: bool,
                                               words: str) -> None:
    line = dict(roofline_lines(roofline(linear, load_spec(chip), ideal=ideal)))["efficiency"]
    assert line.endswith(words)
    assert ideal or "--ideal" not in line


def test_the_eager_module_call_time_is_on_the_peak_line_and_in_json(linear: Report) -> None:
    # h100-sxm.toml: [overhead] module_call = "3us", charged under eager only
    eager = roofline(linear, load_spec("h100-sxm"))
    assert "+ 3.00 us per module call (eager)" in dict(roofline_lines(eager))["peak"]
    assert eager.to_dict()["module_call_s"] == pytest.approx(3e-6)
    graphs = roofline(linear, load_spec("h100-sxm"), runtime="graphs")
    assert "module call" not in dict(roofline_lines(graphs))["peak"]
    assert graphs.to_dict()["module_call_s"] == 0.0


def test_the_comparison_footer_and_json_name_the_runtime_and_figures(linear: Report) -> None:
    from modelmeter.analysis.comparison import Comparison, comparison_row
    from modelmeter.render.compare import render_comparison

    roof = roofline(linear, load_spec("h100-sxm"), runtime="graphs", ideal=True)
    c = Comparison([comparison_row("a", linear, roof)], "exact", chip="h100-sxm",
                   runtime="graphs", figures="ideal")
    text = render_comparison(c, "table")
    assert "on h100-sxm, graphs runtime, ideal figures (not measured)" in text
    d = c.to_dict()
    assert (d["runtime"], d["figures"]) == ("graphs", "ideal")
    assert "runtime" not in Comparison([comparison_row("a", linear)], "exact").to_dict()


def test_the_fuse_title_says_ideal(linear: Report) -> None:
    from modelmeter.analysis.fusion import fusion_whatif
    from modelmeter.render.fusion import render_fusion

    w = fusion_whatif(linear, load_spec("h100-sxm"), ideal=True)
    assert "(runtime eager; ideal figures (--ideal); rules:" in render_fusion(w).splitlines()[0]
    assert w.to_dict()["figures"] == "ideal"
    plain = fusion_whatif(linear, load_spec("h100-sxm"))
    assert plain.figures == "attainable" and "ideal" not in render_fusion(plain)


def test_graphs_on_a_cpu_says_what_the_figure_removes(linear: Report) -> None:
    cpu = roofline(linear, load_spec("epyc-9654"), runtime="graphs")  # no [overhead] launch
    assert any(n.startswith("graphs runtime on a cpu (launches do not overlap execution)")
               and "only as a compiled runtime would" in n for n in cpu.notes)
    assert any(n.startswith("the spec has no launch figure") for n in cpu.notes)
    assert "runtime graphs (a compiled runtime: no per-op host time)" in render_table(
        linear, roofline=cpu)
    gpu = roofline(linear, load_spec("h100-sxm"), runtime="graphs")  # launches overlap
    assert "graphs runtime: no per-op host time (one replay issues every kernel)" in gpu.notes
    assert not any("compiled runtime" in n or "no launch figure" in n for n in gpu.notes)


@pytest.mark.parametrize(("source", "name", "basis"), [
    ("measured by modelmeter calibrate on X (torch 2)", "mine", "(measured by modelmeter calibrate)"),
    ("NVIDIA datasheet", "h100-sxm", "(estimate)"),  # a built-in chip: no datasheet gives it
    ("my notes", "mine", ""),  # a hand-written file: not known
])
def test_hardware_show_says_where_the_kernel_overhead_came_from(source: str, name: str,
                                                                basis: str) -> None:
    spec = replace(load_spec("h100-sxm"), source=source, name=name)
    line = next(ln for ln in render_hardware_show(spec).splitlines()
                if ln.strip().startswith("overhead.kernel"))
    assert line.rstrip().endswith(("4 us per kernel " + basis).rstrip())
