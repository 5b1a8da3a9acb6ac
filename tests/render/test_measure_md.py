"""measure -f md: the text table's figures as Markdown tables (the run, predicted vs
measured, per module at --depth), from one measurement rendered both ways."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelmeter.hardware import spec_from_peak
from modelmeter.render.measure import render_measure
from modelmeter.usecases.measure import measure


@pytest.fixture(scope="module")
def result():  # noqa: ANN201
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Sequential(nn.ReLU(), nn.Linear(32, 8)))
    spec = spec_from_peak(1e12, 1e10, dtype="fp32")
    return measure(model, "4x16", warmup=0, repeats=2, per_module=True, hardware=spec)


def md_table(text: str, title: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(title)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    out = []
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_md_holds_the_table_figures(result) -> None:  # noqa: ANN001
    text = render_measure(result, "table", depth=None)
    md = render_measure(result, "md", depth=None)
    assert md.startswith("# Measured: ")
    run = {k: v for k, v in md_table(md, md.splitlines()[0])}
    for label in ("model", "device", "latency", "throughput", "compute", "memory"):
        assert label in run and f"{label:<12}{run[label]}" in text
    pred = md_table(md, "## Predicted vs measured on " + result.prediction.hardware)
    assert pred[0][0] == "roofline latency" and pred[0][1] in text and pred[0][2] in text
    rows = md_table(md, "## Per module")
    assert [r[0] for r in rows] == [result.model, "0", "1", "1.0", "1.1"]
    for row, mt in zip(rows, result.modules):
        assert row[1] == mt.type and row[2] == str(mt.calls)
        assert row[3] in text  # the measured median, as the table shows it


def test_md_depth_cuts_the_module_rows(result) -> None:  # noqa: ANN001
    rows = md_table(render_measure(result, "md", depth=1), "## Per module")
    assert [r[0] for r in rows] == [result.model, "0", "1"]
