"""The HTML report in a real headless Chromium: it loads without console errors, a node
expands to show its children, columns sort, the search filters, the totals shown equal the
JSON's, and with a chip the chart has one point per module with own ops.

One browser for the module (a fixture); a fresh page per test. Without Chromium or Playwright
these tests FAIL, saying how to install them (tests/browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from browser import launch, sync_playwright

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec
from modelmeter.render import render_json
from modelmeter.render.html_chart import chart_points
from modelmeter.render.html_report import render_html_report
from modelmeter.report import Report


@pytest.fixture(scope="module")
def resnet18() -> Report:
    with torch.device("meta"):
        model = torchvision.models.resnet18()
    return modelmeter.analyze(model.eval(), "1x3x224x224", mode="meta")


@pytest.fixture(scope="module")
def roof(resnet18: Report):
    return roofline(resnet18, load_spec("a100-sxm-80gb"))


@pytest.fixture(scope="module")
def page_file(resnet18: Report, roof, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "resnet18.html"
    path.write_text(render_html_report(resnet18, roof), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture()
def page(browser, page_file: Path):
    """The page opened from disk, with every console error and page error it raised."""
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: errors.append(f"request {r.url}") if not r.url.startswith("file:")
          else None)  # fmt: skip
    pg.goto(page_file.as_uri())
    pg.errors = errors
    yield pg
    pg.close()


def _visible_names(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "table.mm-tree tbody tr", "rs => rs.filter(r => !r.hidden).map(r => r.dataset.name)"
    )


def _row(pg, name: str):
    return pg.locator(f'table.mm-tree tr[data-name="{name}"]')


def test_loads_without_console_errors_or_requests(page, resnet18: Report) -> None:
    assert page.title() == f"modelmeter: {resnet18.model}"
    assert page.locator("table.mm-tree").is_visible()
    page.wait_for_timeout(50)
    assert page.errors == []


def test_depth_one_shows_first_and_a_node_expands_to_its_children(page) -> None:
    shown = _visible_names(page)
    # the root and its children: conv1, bn1, relu, maxpool, layer1..4, avgpool, fc
    assert shown == ["", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                     "layer4", "avgpool", "fc"]  # fmt: skip
    assert not _row(page, "layer1.0").is_visible()
    _row(page, "layer1").locator(".mm-tog").click()
    assert _row(page, "layer1.0").is_visible() and _row(page, "layer1.1").is_visible()
    assert not _row(page, "layer1.0.conv1").is_visible()  # grandchildren stay folded
    assert _row(page, "layer1").get_attribute("class") == "mm-row open"
    _row(page, "layer1").locator(".mm-tog").click()  # and folds back
    assert not _row(page, "layer1.0").is_visible()
    page.get_by_role("button", name="Expand all").click()
    assert len(_visible_names(page)) == page.locator("table.mm-tree tbody tr").count()
    page.get_by_role("button", name="Collapse all").click()
    assert _visible_names(page) == shown


def _siblings_of_root(pg, column: str) -> list[int]:
    k = pg.eval_on_selector_all(
        "table.mm-tree thead th", f"hs => hs.findIndex(h => h.textContent === {column!r})"
    )
    return pg.eval_on_selector_all(
        'table.mm-tree tbody tr[data-parent="0"]',
        f"rs => rs.map(r => Number(r.cells[{k}].dataset.v))",
    )


def test_sorting_by_macs_orders_siblings_and_a_second_click_reverses(page) -> None:
    page.locator("table.mm-tree th", has_text="MACs").first.click()
    macs = _siblings_of_root(page, "MACs")
    assert macs == sorted(macs, reverse=True) and len(macs) == 10
    assert page.locator("table.mm-tree th", has_text="MACs").first.get_attribute(
        "aria-sort") == "descending"  # fmt: skip
    # children stay under their parent: every row follows its parent
    order = page.eval_on_selector_all(
        "table.mm-tree tbody tr", "rs => rs.map(r => [r.dataset.id, r.dataset.parent])"
    )
    seen: set[str] = set()
    for rid, parent in order:
        assert parent == "" or parent in seen
        seen.add(rid)
    page.locator("table.mm-tree th", has_text="MACs").first.click()
    assert _siblings_of_root(page, "MACs") == sorted(macs)
    page.locator("table.mm-ops th", has_text="FLOPs").first.click()
    k = 3  # Operator, Calls, MACs, FLOPs
    ops = page.eval_on_selector_all(
        "table.mm-ops tbody tr", f"rs => rs.map(r => Number(r.cells[{k}].dataset.v))"
    )
    assert ops == sorted(ops, reverse=True)
    assert page.errors == []


def test_search_filters_to_matches_and_their_ancestors(page) -> None:
    page.locator(".mm-search").fill("downsample")
    shown = _visible_names(page)
    assert "layer2.0.downsample" in shown and "layer2.0.downsample.0" in shown
    assert "layer2.0" in shown and "layer2" in shown and "" in shown  # the way there
    assert "conv1" not in shown and "layer1" not in shown  # layer1 has no downsample
    page.locator(".mm-search").fill("BatchNorm2d")  # types match too
    assert "layer4.1.bn2" in _visible_names(page)
    page.locator(".mm-search").fill("")
    assert "layer2.0" not in _visible_names(page)  # back to the folded tree


def _dom_figures(pg) -> dict:
    return pg.evaluate(
        """() => {
        const t = {};
        document.querySelectorAll("table.mm-totals-table tr[data-key]").forEach(r => {
          const v = r.cells[1].dataset.v; if (v !== undefined) t[r.dataset.key] = v; });
        const head = [...document.querySelectorAll("table.mm-tree thead th")].map(h => h.textContent);
        const root = document.querySelector('table.mm-tree tr[data-depth="0"]');
        const cells = {}; head.forEach((h, i) => cells[h] = root.cells[i].dataset.v);
        return {totals: t, root: cells};
        }"""
    )


def test_shown_totals_equal_the_json_totals(page, resnet18: Report, roof) -> None:
    doc = json.loads(render_json(resnet18, roof))
    got = _dom_figures(page)
    t = doc["total"]
    for label, key in (("params", "params"), ("MACs", "macs"), ("FLOPs", "flops"),
                       ("bytes read", "bytes_read"), ("bytes written", "bytes_written"),
                       ("buffers", "buffers"), ("trainable params", "trainable_params"),
                       ("peak live activation memory", "peak_activation_bytes")):  # fmt: skip
        assert int(got["totals"][label]) == t[key], label
    root = got["root"]
    assert int(root["Params"]) == t["params"] == 11_689_512  # torchvision's resnet18
    assert int(root["MACs"]) == t["macs"] and int(root["FLOPs"]) == t["flops"]
    assert int(root["Bytes moved"]) == t["bytes_read"] + t["bytes_written"]
    assert float(root["Latency"]) == doc["roofline"]["latency_s"]
    assert root["Bound"] == doc["roofline"]["bound"]


def test_chart_has_one_point_per_group_of_identical_modules(page, resnet18: Report, roof) -> None:
    points = page.eval_on_selector_all(
        "svg.mm-roofline circle.mm-pt", "cs => cs.map(c => c.dataset.module)"
    )
    expected = [p.members[0] for p in chart_points(resnet18, roof)]
    assert sorted(points) == sorted(expected) and len(points) == len(set(points))
    # resnet18's 60 modules with own ops (20 convs, 20 BNs, 9 ReLUs, maxpool, avgpool, fc and
    # the 8 blocks' residual adds), identical ones (type, output shapes, own cost) one point:
    # - the stem: conv1, bn1, relu, maxpool; the head: avgpool, fc: 6 points;
    # - layer1 (2 blocks, 64 channels, 56x56 throughout): its 4 convs x4, 4 BNs x4, 2 ReLUs
    #   x2, 2 adds x2: 4 points;
    # - layer2..4 each: conv1 (stride 2), the three other 3x3 convs x3, the 1x1 downsample
    #   conv, its 5 BNs (with the downsample's) x5, ReLUs x2, adds x2: 6 points, 3 x 6 = 18.
    assert len(points) == 6 + 4 + 18 == 28
    tip = page.locator('circle.mm-pt[data-module="layer1.0.conv1"] title').text_content()
    assert tip.startswith("layer1.0..1.conv1..2 (Conv2d) ×4\n4 identical modules: ")
    assert "layer1.1.conv2" in tip and "FLOP/B" in tip and "latency" in tip
    box = page.locator("svg.mm-roofline").bounding_box()
    assert box is not None and box["width"] > 600


def _picked(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "table.mm-tree tr.mm-picked", "rs => rs.map(r => r.dataset.name)"
    )


def test_clicking_a_point_marks_and_shows_its_rows(page) -> None:
    conv = page.locator('circle.mm-pt[data-module="layer1.0.conv1"]')
    rows = conv.get_attribute("data-rows").split()
    assert len(rows) == 4  # the 4 convs of layer1, one point
    conv.hover()
    hover = page.eval_on_selector_all("tr.mm-hover", "rs => rs.map(r => r.dataset.id)")
    assert sorted(hover) == sorted(rows)
    conv.dispatch_event("click")  # the point may lie under a larger one
    assert _picked(page) == ["layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1",
                             "layer1.1.conv2"]  # fmt: skip
    assert _row(page, "layer1.1.conv2").is_visible()  # its folded ancestors were opened
    page.locator('circle.mm-pt[data-module="fc"]').dispatch_event("click")
    assert _picked(page) == ["fc"]  # the previous mark is cleared
    assert page.errors == []


def test_two_notebook_displays_on_one_page_work_apart(browser, resnet18: Report, tmp_path) -> None:
    """Jupyter's display (``_repr_html_``): each output is one ``div`` with its own script;
    two on one page fold, filter and sort independently, without errors."""
    path = tmp_path / "notebook.html"
    body = resnet18._repr_html_() + resnet18._repr_html_()
    path.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>", encoding="utf-8")
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(path.as_uri())
    first, second = pg.locator("div.mm").nth(0), pg.locator("div.mm").nth(1)
    first.locator('tr[data-name="layer1"] .mm-tog').click()
    assert first.locator('tr[data-name="layer1.0"]').is_visible()
    assert not second.locator('tr[data-name="layer1.0"]').is_visible()
    second.locator(".mm-search").fill("downsample")
    assert second.locator('tr[data-name="layer3.0.downsample"]').is_visible()
    assert not first.locator('tr[data-name="layer3.0.downsample"]').is_visible()
    assert errors == []
    pg.close()
