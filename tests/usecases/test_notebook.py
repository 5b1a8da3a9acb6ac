"""The notebook and script API: a one-line repr, the HTML report's module tree in Jupyter,
``.macs`` shortcuts, modules by name, and the note a model in training mode gets."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.render.html import render_html


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x))) * 2  # the "* 2" is the model's own op


@pytest.fixture(scope="module")
def report() -> modelmeter.Report:
    return modelmeter.analyze(Net().eval(), (3, 4))


def test_repr_is_one_short_line(report) -> None:
    # params: fc1 4*8 + 8 = 40, fc2 8*2 + 2 = 18 -> 58; MACs: 3*4*8 + 3*8*2 = 96 + 48 = 144
    text = repr(report)
    assert "\n" not in text and len(text) < 120
    flops = report.total().flops
    assert text == f"<Report Net: 58 params, 144 MACs, {flops} FLOPs, torch/meta, 3x4>"


def test_repr_of_a_big_model_uses_prefixes() -> None:
    from torchvision.models import resnet50

    r = modelmeter.analyze(resnet50().eval(), [1, 3, 224, 224])
    # torchvision publishes 25.56M params and 4.09 GMACs for ResNet-50 at 224x224
    assert re.fullmatch(
        r"<Report ResNet: 25\.56M params, 4\.09 GMACs, \d+\.\d\d GFLOPs, torch/meta, "
        r"1x3x224x224>",
        repr(r),
    )


def test_totals_and_rows_have_cost_shortcuts(report) -> None:
    t = report.total()
    assert t.macs == t.cost.macs == 144
    for name in ("flops", "bytes_read", "bytes_written", "weight_bytes", "bytes_moved"):
        assert getattr(t, name) == getattr(t.cost, name)
    row = report["fc1"]
    # fc1 alone: 3 rows x 4 inputs x 8 outputs = 96 MACs; its weights 40 fp32 = 160 bytes
    assert row.macs == row.total_cost.macs == 96
    assert row.weight_bytes == 160 and row.params == 40
    assert row.flops == row.total_cost.flops


def test_a_module_is_reachable_by_name_and_a_typo_names_close_matches(report) -> None:
    assert report["fc2"].type == "Linear" and report["fc2"].macs == 48  # 3 * 8 * 2
    with pytest.raises(KeyError, match=r"no module named 'fc3' in Net; did you mean 'fc2'"):
        report["fc3"]
    with pytest.raises(KeyError, match=r"no module named 'zzz' in Net\"?$"):
        report["zzz"]


def test_names_are_looked_up_not_iterated(report) -> None:
    assert "fc1" in report and "fc3" not in report
    with pytest.raises(TypeError):
        iter(report)  # modules by name, not a sequence: report.modules() iterates
    assert [n.name for n in report.modules()] == ["", "fc1", "act", "fc2"]


def test_html_is_the_module_tree_of_the_html_report_and_its_rows_add_up(report) -> None:
    from html_checks import check_html, tree_rows

    from modelmeter.render.html_report import render_html_fragment
    from modelmeter.render.html_tree import tree_table

    html = report._repr_html_()
    assert html == render_html(report) == render_html_fragment(report)
    assert html.startswith('<div class="mm">') and html.endswith("</div>")
    assert tree_table(report) in html  # the HTML report's module tree
    rows = tree_rows(html)
    assert [r[0] for r in rows] == ["", "fc1", "act", "fc2"]
    # root 144 = fc1 3*4*8 = 96 + act 0 + fc2 3*8*2 = 48 (the "* 2" is elementwise: no MACs)
    assert [r[2]["macs"] for r in rows] == [144, 96, 0, 48]
    check_html(html, report)  # the totals table = the report's totals, as on the page


def test_notebook_view_has_the_totals_and_with_a_chip_its_roofline(report) -> None:
    from html_checks import parse_tables, totals_table

    html = report._repr_html_()
    assert "mm-totals-table" in parse_tables(html) and "mm-chip" not in html
    # the totals table's exact MACs: 144 (fc1 96 + fc2 48), params 40 + 18 = 58
    assert totals_table(html)["macs"] == 144 and totals_table(html)["params"] == 58
    spec = modelmeter.load_spec("a100-sxm-80gb")
    roof = modelmeter.roofline(report, spec)
    chip = report.with_chip(roof)
    assert chip.chip is roof and report.chip is None  # a copy; the report is unchanged
    assert chip == report and repr(chip) == repr(report)  # the chip is no part of its figures
    shown = chip._repr_html_()
    assert '<section class="mm-chip">' in shown and spec.display_name in shown
    roof_table = parse_tables(shown)["mm-roof"]
    quantities = [r.cells[0].text for r in roof_table.rows]
    assert any("latency" in q for q in quantities) and any("bound" in q for q in quantities)
    assert chip.to_dict() == report.to_dict()  # JSON never holds the chip


def test_the_report_imports_no_renderer() -> None:
    import ast
    import inspect

    import modelmeter.report

    tree = ast.parse(inspect.getsource(modelmeter.report))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert not [m for m in imported if "render" in m]
    assert modelmeter.report.DISPLAY["html"].__module__ == "modelmeter"  # the facade's


def test_html_escapes_names_and_notes(report) -> None:
    from modelmeter.report import with_notes

    odd = with_notes(report, "<script>alert(1)</script>")
    odd.model = "<b>&</b>"
    html = render_html(odd)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>&" not in html and "&lt;b&gt;&amp;&lt;/b&gt;" in html


def test_a_model_in_training_mode_gets_a_note_saying_what_changes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    train = modelmeter.analyze(model.train(), (1, 3, 8, 8))
    infer = modelmeter.analyze(model.eval(), (1, 3, 8, 8))
    [note] = [n for n in train.notes if "training mode" in n]
    assert "batch norm uses batch statistics" in note and "dropout" in note
    assert "model.eval()" in note
    assert not any("training mode" in n for n in infer.notes)
    # what the note warns of: batch statistics cost more than applying the running ones
    assert train.total().flops > infer.total().flops
    assert train.total().macs == infer.total().macs  # 1*4*6*6 * 3*3*3 = 3888 both ways
    assert infer.total().macs == 3888


def test_a_training_model_without_batch_norm_or_dropout_still_gets_the_note() -> None:
    r = modelmeter.analyze(nn.Linear(4, 3), (1, 4))  # modules start in training mode
    assert any(
        n.startswith("the model is in training mode: no batch norm or dropout") for n in r.notes
    )
