"""csv and md show the rows the table shows: identical blocks collapsed into one summed row
(unless --no-collapse), siblings sorted by --sort, or the flat --top hotspots; the rows still
add up. Figures by hand: Linear(8, 8) on a 1x8 input is 8 x 8 = 64 MACs, Linear(8, 2) 16."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from render_checks import check_csv, check_markdown
from torch import nn

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.cli import main
from modelmeter.hardware import spec_from_peak
from modelmeter.render import render_report
from modelmeter.render.table import table_cells, table_columns
from modelmeter.render.table_rows import TableView
from modelmeter.report import Report


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 2)  # registered first: shown first unless sorted
        self.blocks = nn.Sequential(*(Block() for _ in range(4)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


@pytest.fixture(scope="module")
def net() -> Report:
    return modelmeter.analyze(Net().eval(), "1x8", mode="meta")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def md_rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("| Module |"))
    out = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_csv_collapses_identical_blocks_into_a_summed_row(net: Report) -> None:
    text = render_report(net, "csv", depth=None)
    check_csv(text, net)  # rows add up
    by_name = {r["name"]: r for r in rows(text)}
    block = by_name["blocks.0..3"]
    assert block["blocks"] == "4" and block["type"] == "Block"
    assert block["macs"] == str(4 * 64)  # 256: the sum over the 4 blocks
    assert by_name["blocks.0..3.fc"]["self_macs"] == "256"
    assert by_name["blocks.0..3.fc"]["self_params"] == str(4 * 72)  # 4 x (8*8 + 8)
    assert by_name["head"]["blocks"] == "1" and by_name["head"]["macs"] == "16"
    assert by_name["Net"]["macs"] == str(256 + 16)


def test_csv_and_md_no_collapse_show_every_block(net: Report) -> None:
    flat = TableView(collapse=False)
    text = render_report(net, "csv", depth=None, view=flat)
    check_csv(text, net)
    names = [r["name"] for r in rows(text)]
    assert [f"blocks.{i}" for i in range(4)] == [n for n in names if n.count(".") == 1]
    assert {r["blocks"] for r in rows(text)} == {"1"}
    md = render_report(net, "md", depth=None, view=flat)
    check_markdown(md, net)
    assert "blocks.3.fc" in md and "×" not in md


def test_md_collapses_like_the_table(net: Report) -> None:
    md = render_report(net, "md", depth=None)
    check_markdown(md, net)
    names = [r[0] for r in md_rows(md)]
    assert names == ["Net", "head", "blocks", "blocks.0..3 ×4", "blocks.0..3.fc ×4",
                     "blocks.0..3.act ×4"]  # fmt: skip
    assert "×N: N identical blocks, figures summed" in md


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_sort_orders_siblings_as_in_the_table(net: Report, fmt: str) -> None:
    view = TableView(sort="macs")
    text = render_report(net, fmt, depth=1, view=view)
    names = [r["name"] for r in rows(text)] if fmt == "csv" else [r[0] for r in md_rows(text)]
    assert names == ["Net", "blocks", "head"]  # blocks 256 MACs before head 16
    table = [c[0].lstrip("├└─ ") for c in table_cells(net, 1, sort="macs")]
    assert table == ["Net", "blocks", "head"]
    (check_csv if fmt == "csv" else check_markdown)(text, net)


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_top_is_the_flat_list_of_own_costs(net: Report, fmt: str) -> None:
    text = render_report(net, fmt, depth=None, view=TableView(top=100))
    if fmt == "csv":
        got = {r["name"]: int(r["macs"]) for r in rows(text)}
        assert all(r["macs"] == r["self_macs"] for r in rows(text))  # own cost in both
    else:
        cols = md_rows(text)
        got = {r[0]: int(r[5].replace(",", "")) for r in cols}
        assert "the top 100 by own macs" in text
    assert sum(got.values()) == 272  # the list partitions the model: 4 x 64 + 16
    assert got["blocks.0..3.fc" if fmt == "csv" else "blocks.0..3.fc ×4"] == 256
    top1 = render_report(net, fmt, depth=None, view=TableView(top=1))
    first = rows(top1)[0]["name"] if fmt == "csv" else md_rows(top1)[0][0]
    assert first.startswith("blocks.0..3.fc")


def test_csv_roofline_times_of_a_collapsed_row_are_summed(net: Report) -> None:
    roof = roofline(net, spec_from_peak(1e12, 1e10, dtype="fp32"))  # no queue, no overhead
    text = render_report(net, "csv", depth=None, roofline=roof)
    by_name = {r["name"]: r for r in rows(text)}
    one = roof.modules["blocks.0"].latency_s
    assert float(by_name["blocks.0..3"]["latency_s"]) == pytest.approx(4 * one)
    assert by_name["blocks.0..3"]["bound"] == roof.modules["blocks.0"].bound
    total = float(by_name["Net"]["latency_s"])
    assert total == pytest.approx(roof.latency_s)


def test_the_three_formats_show_the_same_rows(net: Report) -> None:
    for view in (TableView(), TableView(collapse=False), TableView(sort="flops")):
        table = table_cells(net, 2, collapse=view.collapse, sort=view.sort)
        macs = [c[list(table_columns()).index("MACs")] for c in table]
        csv_rows = rows(render_report(net, "csv", depth=2, view=view))
        md = md_rows(render_report(net, "md", depth=2, view=view))
        assert len(table) == len(csv_rows) == len(md)
        assert macs == [r["macs"] for r in csv_rows]  # small numbers: shown whole
        assert [r["macs"] for r in csv_rows] == [r[5].replace(",", "") for r in md]


def test_cli_csv_honours_sort_and_top(tmp_path, net: Report, monkeypatch, capsys) -> None:
    import modelmeter.usecases.analyze

    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: net)
    assert main(["analyze", "m", "-f", "csv", "--top", "1", "--depth", "all"]) == 0
    out = capsys.readouterr().out
    assert [r["name"] for r in rows(out)] == ["blocks.0..3.fc"]
    assert main(["analyze", "m", "-f", "md", "--sort", "macs", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert [r[0] for r in md_rows(out)] == ["Net", "blocks", "head"]
