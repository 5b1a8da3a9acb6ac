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
