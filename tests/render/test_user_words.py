"""User-facing text speaks the user's words: the source document (or the formula itself),
never the project's internal names (issue 16, "consistent flags and words")."""

from __future__ import annotations

import re

import pytest
import torch

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec
from modelmeter.render import render_report
from modelmeter.render.ops import render_ops

# internal words: the name the project's own notes give the source document, module paths
INTERNAL = re.compile(r"\bseed's\b|\(the seed\)|\bthe seed\b|modelmeter\.[a-z_]+\.[a-z_]+")


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_rendered_reports_use_no_internal_names(fmt: str) -> None:
    report = modelmeter.analyze(torch.nn.Linear(4, 2), "1x4", dtype="int8")
    text = render_report(report, fmt, roofline=roofline(report, load_spec("hi3519av100")))
    assert not INTERNAL.search(text), INTERNAL.search(text)
    if fmt in ("table", "md"):  # the convention is the source document's, in those words
        assert "the source document's formulas" in text


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_the_ops_reference_uses_no_internal_names(fmt: str) -> None:
    assert not INTERNAL.search(render_ops(fmt))
