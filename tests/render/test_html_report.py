"""The HTML report without a browser: its structure (gold), rows that add up to the JSON's
totals, escaping, the unsupported-op block, the chart's points, and the CLI writing it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from cli_helpers import run
from html_checks import check_html, outline, parse_tables, totals_table, tree_rows
from render.test_render import Tiny

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec
from modelmeter.render import render_json, render_report
from modelmeter.render.formats import REPORT_FORMATS
from modelmeter.render.html_chart import chart_points
from modelmeter.render.html_report import render_html_report
from modelmeter.report import Report, with_notes

Gold = Callable[[str, str], None]


@pytest.fixture(scope="module")
def tiny() -> Report:
    return modelmeter.analyze(Tiny().eval(), "1x3x32x32", mode="meta")


@pytest.fixture(scope="module")
def chip():
    return load_spec("a100-sxm-80gb")


def test_html_is_a_report_format_and_one_page(tiny: Report) -> None:
    assert "html" in REPORT_FORMATS
    page = render_report(tiny, "html")
    assert page == render_html_report(tiny)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # self-contained: no external resource, no network
    for ref in ("<link", " src=", "http://", "https://", "@import", "url("):
        assert ref not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_rows_add_up_and_totals_equal_the_json(tiny: Report, chip) -> None:
    roof = roofline(tiny, chip)
    for page in (render_html_report(tiny), render_html_report(tiny, roof)):
        check_html(page, tiny)
        doc = json.loads(render_json(tiny, roof))
        totals = totals_table(page)
        assert totals == {k: doc["total"][k] for k in totals}
        rows = tree_rows(page)
        # every module of the JSON is one row, in the same (depth-first) order
        assert [r[0] for r in rows] == [m["name"] for m in doc["modules"]]
        assert [r[2]["macs"] for r in rows] == [m["total"]["macs"] for m in doc["modules"]]


def test_tiny_numbers_by_hand(tiny: Report) -> None:
    rows = {r[0]: r for r in tree_rows(render_html_report(tiny))}
    # features.0: 3->8 channels, 3x3, 32x32 outputs: 8*32*32 * 3*3*3 = 221,184 MACs
    assert rows["features.0"][2]["macs"] == 221_184
    # features.3: 8->16, 3x3, stride 2 -> 16x16: 16*16*16 * 8*3*3 = 294,912 MACs
    assert rows["features.3"][2]["macs"] == 294_912
    # fc: 16 -> 10: 160 MACs; params 16*10 + 10 = 170
    assert rows["fc"][2]["macs"] == 160 and rows["fc"][2]["params"] == 170
    assert rows[""][2]["params"] == 1570  # 216 + 16 + 1168 + 170


def test_chart_has_one_point_per_module_with_own_ops(tiny: Report, chip) -> None:
    roof = roofline(tiny, chip)
    page = render_html_report(tiny, roof)
    names = [p.members[0] for p in chart_points(tiny, roof)]
    # the modules whose own ops have FLOPs and bytes: the two convs, BN, the ReLUs, pool, fc;
    # none identical (the two ReLUs' outputs differ: 8x32x32 and 16x16x16), so one point each
    assert names == ["features.0", "features.1", "features.2", "features.3", "features.4",
                     "pool", "fc"]  # fmt: skip
    assert all(p.count == 1 for p in chart_points(tiny, roof))
    assert page.count('<circle class="mm-pt') == len(names)
    for n in names:
        assert f'data-module="{n}"' in page
    assert "<title>features.0 (Conv2d)" in page  # the hover text names the module
    tree = parse_tables(page)["mm-tree"]
    assert tree.head[-3:] == ["Latency", "Bound", "% time"]


class Stack(torch.nn.Module):
    """Four identical blocks (Linear 64->64 then ReLU) and a head: a Llama-like repeat."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()) for _ in range(4)
        )
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_identical_repeated_modules_are_one_point(chip) -> None:
    report = modelmeter.analyze(Stack().eval(), "8x64", mode="meta")
    roof = roofline(report, chip)
    points = chart_points(report, roof)
    # the 4 Linear(64, 64) are one point x4, the 4 ReLUs one x4, the head one: 3 points
    # (the Sequentials and the ModuleList have no own ops)
    assert [(p.members[0], p.count) for p in points] == [
        ("layers.0.0", 4), ("layers.0.1", 4), ("head", 1)]  # fmt: skip
    lin = points[0]
    assert lin.members == ("layers.0.0", "layers.1.0", "layers.2.0", "layers.3.0")
    # summed FLOPs over summed time: 4 * (2 FLOPs * 8 * 64 * 64 MACs) = 4 * 65,536 FLOPs (the
    # bias of addmm is not counted apart)
    flops = sum(roof.own[m].flops for m in lin.members)
    assert flops == 4 * 65_536
    assert lin.latency_s == pytest.approx(sum(roof.own[m].latency_s for m in lin.members))
    assert lin.achieved == pytest.approx(flops / lin.latency_s)
    page = render_html_report(report, roof)
    assert page.count('<circle class="mm-pt') == 3
    ids = {r["data-name"]: r["data-id"] for r in _tree_attrs(page)}
    rows = " ".join(ids[m] for m in lin.members)
    assert f'data-module="layers.0.0" data-count="4" data-rows="{rows}"' in page
    # the hover text: the label with x4 and every member's name
    assert "<title>layers.0..3.0 (Linear) ×4\n4 identical modules: layers.0.0, layers.1.0, " \
        "layers.2.0, layers.3.0\n" in page  # fmt: skip
    flat = render_html_report(report, roof, collapse=False)
    assert flat.count('<circle class="mm-pt') == 9  # 4 + 4 + 1, one per module


def _tree_attrs(page: str) -> list[dict[str, str]]:
    import re

    return [dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', tr))
            for tr in re.findall(r'<tr class="mm-row[^>]*>', page)]  # fmt: skip


def test_every_text_is_escaped(tiny: Report) -> None:
    odd = with_notes(tiny, "<script>alert(1)</script>")
    odd.model = '<img src=x onerror="alert(2)">'
    page = render_html_report(odd)
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_unsupported_ops_get_their_block(handmade: Report) -> None:
    page = render_html_report(handmade)
    check_html(page, handmade)
    # the hand-made report's one unsupported op, called twice (tests/conftest.py)
    assert "NOT COUNTED: 1 unsupported op(s), 2 call(s)" in page
    assert '<tr data-op="aten.frobnicate"><td>aten.frobnicate</td><td class="n" data-v="2"' in page
    assert page.index('class="mm-warn"') < page.index('class="mm-modules"')  # said at the top


def test_all_covered_says_so(tiny: Report) -> None:
    assert "Coverage: every op was counted" in render_html_report(tiny)


def test_gold_structure(tiny: Report, chip, gold: Gold) -> None:
    gold("tiny.html.txt", outline(render_html_report(tiny)))
    gold("tiny_a100.html.txt", outline(render_html_report(tiny, roofline(tiny, chip))))


def test_cli_writes_the_page(tmp_path, capsys) -> None:
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "analyze", "torchvision:resnet18", "--format", "html", "-o",
                       str(out), "--hardware", "a100-sxm-80gb")  # fmt: skip
    assert code == 0, err
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'class="mm-roofline"' in page
    assert "torchvision:resnet18" in page


def test_a_missing_browser_fails_saying_how_to_install_it(monkeypatch) -> None:
    from browser import chromium_path

    monkeypatch.delenv("MODELMETER_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        chromium_path()


def test_several_models_with_html_are_refused_in_one_line(capsys) -> None:
    from cli_helpers import one_error

    code, _, err = run(capsys, "analyze", "m1", "m2", "-f", "html")
    assert code == 2
    assert "-f html is one model's report" in one_error(err)


def test_no_collapse_draws_one_point_per_module(tmp_path, capsys) -> None:
    pages = []
    for extra in ((), ("--no-collapse",)):
        out = tmp_path / f"r{len(pages)}.html"
        code, _, err = run(capsys, "analyze", "torchvision:resnet18", "-f", "html", "-o",
                           str(out), "--hardware", "a100-sxm-80gb", *extra)  # fmt: skip
        assert code == 0, err
        pages.append(out.read_text().count('<circle class="mm-pt'))
    # resnet18: 28 groups of identical modules (tests/render/test_html_browser.py), 60 modules
    assert pages == [28, 60]


def test_depth_is_refused_and_units_honoured(tiny: Report, capsys, tmp_path) -> None:
    code, _, err = run(capsys, "analyze", "torchvision:resnet18", "-f", "html", "--depth", "2")
    assert code == 2 and "the html page holds every module" in err
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "analyze", "torchvision:resnet18", "-f", "html", "--units", "iec",
                       "-o", str(out))  # fmt: skip
    assert code == 0, err
    assert "MiB" in out.read_text()


def test_a_report_read_back_from_json_renders_the_same_page(tiny: Report) -> None:
    back = Report.from_dict(json.loads(render_json(tiny)))
    assert render_html_report(back) == render_html_report(tiny)
