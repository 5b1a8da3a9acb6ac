"""Renderers: gold files for every format, rows add up in every format, pure functions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest
import torch
import torchvision
from render_checks import (
    RowsDontAddUp,
    check_csv,
    check_json,
    check_markdown,
    check_rows_add_up,
    check_table,
    check_tree,
)
from torch import nn

import modelmeter
from modelmeter.render import FORMATS, render_csv, render_json, render_markdown, render_report
from modelmeter.render.ops import render_ops
from modelmeter.render.table import render_table
from modelmeter.render.table_rows import TableView
from modelmeter.report import Cost, ModuleNode, Report

Gold = Callable[[str, str], None]
REPO = Path(__file__).resolve().parents[2]


class Tiny(nn.Module):
    """2 convs + BN + ReLU + linear, input 1x3x32x32."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture(scope="module")
def tiny() -> Report:
    return modelmeter.analyze(Tiny().eval(), "1x3x32x32", mode="meta")


@pytest.fixture(scope="module")
def resnet18() -> Report:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return modelmeter.analyze(model.eval(), "1x3x224x224", mode="meta")


# ---- the numbers the renderers show ---------------------------------------------------------


def test_tiny_numbers_by_hand(tiny: Report) -> None:
    t = tiny.total()
    # params: conv1 3*8*3*3 = 216; bn 2*8 = 16; conv2 8*16*3*3 + 16 = 1168; fc 16*10 + 10 = 170
    assert t.params == 216 + 16 + 1168 + 170 == 1570
    # buffers: running mean 8 + running var 8 + num_batches_tracked 1
    assert t.buffers == 17
    rows = {r.name: r for r in tiny.by_module()}
    # conv1: 8x32x32 outputs, 27 products each: 221,184 MACs; no bias: (2*27-1)*8192 FLOPs
    assert rows["features.0"].total_cost.macs == 221_184
    assert rows["features.0"].total_cost.flops == 53 * 8192 == 434_176
    # conv2 (bias): 16x16x16 outputs x 72 products = 294,912 MACs; 2*72*4096 FLOPs
    assert rows["features.3"].total_cost.macs == 294_912
    assert rows["features.3"].total_cost.flops == 589_824
    assert rows["fc"].total_cost.macs == 160
    assert t.cost.macs == 221_184 + 294_912 + 160 == 516_256


def test_handmade_table_shows_totals_and_not_counted(handmade: Report) -> None:
    text = render_table(handmade, width=160)
    # body subtree: flops 100 (own add) + 200 (linear) + 10 (relu) = 310
    body = next(line for line in text.splitlines() if "body" in line and "Sequential" in line)
    assert "310 " in body
    # totals: MACs 100 + 10 = 110; FLOPs 310 + 20 = 330; params 110 + 11 = 121, 11 frozen
    assert "MACs                  110 (110)" in text
    assert "330 (330)" in text and "exact: every multiply" in text
    assert "trainable 110 · frozen 11 · buffers 3 · unused 0" in text
    # bytes read 1,404 of which weights 440 + 44 = 484, activations 920
    assert "1.40 KB (1,404): activations 920 B · weights 484 B" in text
    # size: 121 params -> fp32 484 B, fp16 242 B, int4 60.5 -> 61 B; native = param bytes 484
    assert "fp32 484 B" in text and "fp16 242 B" in text and "int4 61 B" in text
    assert "native 484 B" in text
    assert "NOT COUNTED: 1 unsupported op(s), 2 call(s)" in text
    assert "aten.frobnicate" in text
    assert "a note" in text
    assert "\x1b[" not in text  # no colour codes
    assert all(len(line) <= 160 for line in text.splitlines())


def test_table_percent_and_tree(handmade: Report) -> None:
    text = render_table(handmade)
    lines = text.splitlines()
    # head: 20 of 330 FLOPs = 6.1%; body: 310/330 = 93.9%
    assert any("└─ head" in line and "6.1%" in line for line in lines)
    assert any("├─ body" in line and "93.9%" in line for line in lines)
    assert any("│  ├─ 0" in line for line in lines)  # body.0 shown relative to its parent
    cut = render_table(handmade, depth=1)
    assert "ReLU" not in cut and "Sequential" in cut


def test_color_output_has_escape_codes(handmade: Report) -> None:
    assert "\x1b[" in render_table(handmade, color=True)


def test_all_covered_says_so(tiny: Report, handmade: Report) -> None:
    handmade.root.children[1].unsupported.clear()
    assert "NOT COUNTED" not in render_table(handmade)
    assert "every op was counted" in render_table(handmade)


def test_csv_integer_rows(handmade: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(handmade))))
    assert [r["name"] for r in rows] == ["handmade", "body", "body.0", "body.1", "head"]
    root, body = rows[0], rows[1]
    assert (root["macs"], root["flops"], root["bytes_read"], root["weight_bytes"]) == (
        "110",
        "330",
        "1404",
        "484",
    )
    # body: total flops 310, self flops 100 (its own add)
    assert (body["flops"], body["self_flops"], body["params"], body["self_params"]) == (
        "310",
        "100",
        "110",
        "0",
    )
    # depth 0 is the root row alone, named by the model's label (not an empty name)
    rows = list(csv.DictReader(io.StringIO(render_csv(handmade, depth=0))))
    assert [r["name"] for r in rows] == [handmade.model] and handmade.model
    md = render_markdown(handmade, depth=0)
    assert f"| {handmade.model} | 0 |" in md


def test_markdown_has_totals_and_not_counted(handmade: Report) -> None:
    text = render_markdown(handmade)
    assert "| handmade | 0 | Net | 1 | 121 | 110 | 330 | 0 | 0 | 1,404 | 484 |" in text
    assert "| FLOPs | 330 |" in text
    assert "## NOT COUNTED: 1 unsupported op(s), 2 call(s)" in text


def test_renderers_do_not_change_the_report(tiny: Report) -> None:
    before = tiny.to_dict()
    for fmt in FORMATS:
        render_report(tiny, fmt, depth=1)
    check_rows_add_up(tiny, 1)
    assert tiny.to_dict() == before


def test_render_unknown_format(handmade: Report) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render_report(handmade, "xml")


# ---- JSON round trip ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["handmade", "tiny"])
def test_json_round_trip(which: str, handmade: Report, tiny: Report) -> None:
    r = handmade if which == "handmade" else tiny
    d = r.to_dict()
    assert Report.from_dict(d).to_dict() == d
    text = render_json(r)
    assert render_json(Report.from_dict(json.loads(text))) == text


# ---- rows add up ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [None, 0, 1, 2])
def test_rows_add_up_tiny_and_handmade(depth: int | None, tiny: Report, handmade: Report) -> None:
    check_rows_add_up(tiny, depth)
    check_rows_add_up(handmade, depth)


@pytest.mark.parametrize("depth", [None, 2])
def test_rows_add_up_resnet18(depth: int | None, resnet18: Report) -> None:
    check_rows_add_up(resnet18, depth)


def test_checks_catch_a_wrong_csv_number(handmade: Report) -> None:
    text = render_csv(handmade)
    # body's total flops 310 -> 311: 311 != self 100 + children 200 + 10
    bad = text.replace("body,Sequential,1,1,110,100,310,", "body,Sequential,1,1,110,100,311,")
    assert bad != text
    with pytest.raises(RowsDontAddUp, match="body"):
        check_csv(bad)
    # the root not equal to the report's total is caught as well
    with pytest.raises(RowsDontAddUp):
        check_csv(text.replace(",Net,0,1,121,110,330,", ",Net,0,1,121,110,331,"), handmade)
    # a leaf (or a cut row) whose total is below its own cost
    with pytest.raises(RowsDontAddUp, match="below"):
        # body cut at depth 1: total flops 310 but self flops made 400
        cut = render_csv(handmade, 1)
        bad = cut.replace("4x10,0,0,100,800,400,0", "4x10,0,0,400,800,400,0")
        assert bad != cut
        check_csv(bad)


def test_checks_catch_a_wrong_markdown_number(handmade: Report) -> None:
    text = render_markdown(handmade)
    check_markdown(text, handmade)
    bad = text.replace(
        "| body | 1 | Sequential | 1 | 110 | 100 | 310 |",
        "| body | 1 | Sequential | 1 | 110 | 100 | 300 |",
    )
    assert bad != text
    with pytest.raises(RowsDontAddUp, match="body"):
        check_markdown(bad)
    with pytest.raises(RowsDontAddUp, match="totals section"):
        check_markdown(text.replace("| FLOPs | 330 |", "| FLOPs | 331 |"))


def test_checks_catch_a_wrong_json_number(handmade: Report) -> None:
    doc = json.loads(render_json(handmade))
    doc["modules"][1]["total"]["macs"] += 1
    with pytest.raises(RowsDontAddUp, match="body"):
        check_json(json.dumps(doc))


def test_checks_catch_a_wrong_table(handmade: Report, tiny: Report) -> None:
    text = render_table(tiny)
    check_table(text, tiny)
    # the table of another report does not match
    with pytest.raises(RowsDontAddUp):
        check_table(render_table(handmade), tiny)
    # a table showing self costs instead of totals: the Sequential row shows 0 MACs
    bad = text.replace("516.10K", "0      ", 1)
    assert bad != text
    with pytest.raises(RowsDontAddUp, match="features"):
        check_table(bad, tiny)


class SelfOnlyNode(ModuleNode):
    """A buggy node whose 'total' forgets its children (the classic self-vs-total mix-up)."""

    def total_cost(self, phase: str | None = None) -> Cost:
        return self.self_cost(phase)


def test_check_tree_catches_a_total_without_children(handmade: Report) -> None:
    check_tree(handmade)
    body = handmade.root.children[0]
    bad = SelfOnlyNode(**{f.name: getattr(body, f.name) for f in fields(ModuleNode)})
    handmade.root.children[0] = bad
    # body's total shows only its own add (flops 100), not 100 + 200 + 10
    with pytest.raises(RowsDontAddUp, match="'body'"):
        check_tree(handmade)


def test_checks_catch_a_level_skipped(handmade: Report) -> None:
    handmade.root.children[0].children[0].depth = 3  # body.0 under body (depth 1)
    with pytest.raises(RowsDontAddUp, match="skips a level"):
        check_csv(render_csv(handmade))


# ---- gold files -----------------------------------------------------------------------------


def test_gold_tiny_all_formats(tiny: Report, gold: Gold) -> None:
    gold("tiny.txt", render_report(tiny, "table", depth=None))
    gold("tiny.json", render_report(tiny, "json"))
    gold("tiny.csv", render_report(tiny, "csv", depth=None))
    gold("tiny.md", render_report(tiny, "md", depth=None))


def test_gold_resnet18_table_depth2(resnet18: Report, gold: Gold) -> None:
    gold("resnet18_depth2.txt", render_report(resnet18, "table", depth=2))


def test_docs_ops_md_is_up_to_date(gold: Gold) -> None:
    gold(REPO / "docs" / "ops.md", render_ops("md"))


def test_ops_listing_formats() -> None:
    data = json.loads(render_ops("json"))
    conv = [f for f in data["formulas"] if "convolution" in f["aten"]]
    assert len(conv) == 1 and conv[0]["family"] == "conv" and conv[0]["doc"]
    assert data["zero_cost"]["aten"]["view"] == "view"
    assert "Reshape" in data["zero_cost"]["onnx"]
    table = render_ops("table")
    assert "convolution" in table and "Zero-cost" in table
    with pytest.raises(ValueError):
        render_ops("xml")


def test_gold_resnet18_csv_md_depth2_collapsed_sorted_top(resnet18: Report, gold: Gold) -> None:
    # csv and md show the table's rows: layer1.0..1 ×2 collapsed, siblings sorted, top N
    gold("resnet18_depth2.csv", render_report(resnet18, "csv", depth=2))
    gold("resnet18_depth2.md", render_report(resnet18, "md", depth=2))
    sorted_top = TableView(sort="flops", top=8)
    gold("resnet18_depth2_top8.md", render_report(resnet18, "md", depth=2, view=sorted_top))
    gold("resnet18_depth2_top8.csv", render_report(resnet18, "csv", depth=2, view=sorted_top))
