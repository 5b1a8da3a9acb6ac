"""Hotspots first: identical blocks collapse into one summed row, siblings sort by a cost,
--top lists the modules with the highest own cost, and a per-operator summary follows.

Figures derived by hand: Linear(8, 8) on a 1x8 input is 8 outputs x 8 inputs = 64 MACs and
has 8*8 + 8 = 72 parameters."""

from __future__ import annotations

import pytest
import torch
from render_checks import check_rows_add_up
from torch import nn

import modelmeter
from modelmeter.cli import main
from modelmeter.render.table import render_table, table_cells, table_columns
from modelmeter.render.table_ops import operator_cells
from modelmeter.render.table_rows import TableView, group_label, hotspots, table_rows
from modelmeter.report import Report

COLS = list(table_columns())


def col(cells: tuple[str, ...], name: str) -> str:
    return cells[COLS.index(name)]


def four_linears() -> Report:
    model = nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)))
    return modelmeter.analyze(model, "1x8", mode="meta")


def test_four_identical_linears_collapse_into_one_summed_row() -> None:
    report = four_linears()
    rows = table_cells(report, None)
    assert len(rows) == 2  # the Sequential and one row for its 4 identical children
    block = rows[1]
    assert col(block, "Module") == "└─ 0..3 ×4"
    assert col(block, "MACs") == "256"  # 4 x 64
    assert col(block, "Self MACs") == "256"  # a Linear's cost is its own
    assert col(block, "Params") == "288"  # 4 x 72
    assert col(block, "Calls") == "4"
    assert col(block, "FLOPs") == col(rows[0], "FLOPs")  # the blocks are the whole model
    assert "×N: N identical blocks, figures summed" in render_table(report)
    check_rows_add_up(report, None)


def test_no_collapse_shows_every_block() -> None:
    report = four_linears()
    rows = table_cells(report, None, collapse=False)
    assert [col(r, "Module") for r in rows[1:]] == ["├─ 0", "├─ 1", "├─ 2", "└─ 3"]
    assert all(col(r, "MACs") == "64" for r in rows[1:])
    assert "identical blocks" not in render_table(report, view=TableView(collapse=False))


def test_only_identical_neighbours_collapse_and_nested_rows_sum_every_block() -> None:
    # Linear(8, 4) differs in structure: 0..1 collapse, 2 stays
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 4))
    names = [col(r, "Module") for r in table_cells(modelmeter.analyze(model, "1x8"), None)]
    assert names[1:] == ["├─ 0..1 ×2", "└─ 2"]
    # 3 blocks of (Linear(8, 8), ReLU): the Linear row under the collapsed row sums 3 x 64
    blocks = nn.Sequential(*(nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(3)))
    report = modelmeter.analyze(blocks, "1x8", mode="meta")
    rows = table_cells(report, None)
    assert col(rows[1], "Module") == "└─ 0..2 ×3" and col(rows[1], "MACs") == "192"
    assert col(rows[2], "Module") == "   ├─ 0" and col(rows[2], "MACs") == "192"
    assert table_rows(report)[2].members == ("0.0", "1.0", "2.0")
    check_rows_add_up(report, None)


class Norms(nn.Module):
    """Two identical LayerNorms that are not a numbered series: they stay apart."""

    def __init__(self) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(8)
        self.post_norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_norm(self.input_norm(x))


def test_only_numbered_series_collapse() -> None:
    report = modelmeter.analyze(Norms(), "1x8", mode="meta")
    names = [col(r, "Module") for r in table_cells(report, None)]
    assert names[1:] == ["├─ input_norm", "└─ post_norm"]


def test_group_label_keeps_the_common_stem() -> None:
    assert group_label("encoder_layer_0", "encoder_layer_11", 12) == "encoder_layer_0..11 ×12"
    assert group_label("layer_10", "layer_19", 10) == "layer_10..19 ×10"


def test_sort_orders_siblings_by_their_total() -> None:
    # Linear(8, 2): 16 MACs; Linear(2, 16): 32 MACs -> sorted by MACs the second comes first
    model = nn.Sequential(nn.Linear(8, 2), nn.Linear(2, 16))
    report = modelmeter.analyze(model, "1x8", mode="meta")
    rows = table_cells(report, None, sort="macs")
    assert [(col(r, "Module"), col(r, "MACs")) for r in rows[1:]] == [
        ("├─ 1", "32"),
        ("└─ 0", "16"),
    ]
    # by params: 8*2 + 2 = 18 for the first, 2*16 + 16 = 48 for the second: the same order
    assert [col(r, "Module") for r in table_cells(report, None, sort="params")[1:]] == [
        "├─ 1",
        "└─ 0",
    ]


class Functional(nn.Module):
    """A parent with its own matmul: x (1x8) @ w (8x16) = 8 x 16 = 128 MACs of its own,
    beside its child Linear(8, 8) with 64."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.w = nn.Parameter(torch.ones(8, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) @ self.w


def test_top_lists_own_cost_and_partitions_the_total() -> None:
    report = modelmeter.analyze(Functional(), "1x8", mode="meta")
    rows = table_rows(report, None)
    top = hotspots(rows, 5, "macs")
    assert [(r.label, r.total_cost.macs) for r in top] == [("Functional", 128), ("a", 64)]
    assert sum(r.total_cost.macs for r in top) == report.total().cost.macs  # 192
    cells = table_cells(report, None, top=1)
    flat = list(table_columns(flat=True))
    assert "Self MACs" not in flat
    assert len(cells) == 1 and cells[0][flat.index("MACs")] == "128"
    text = render_table(report, view=TableView(top=1))
    assert "top 1 by own macs" in text


def test_top_at_a_depth_keeps_the_cut_subtree() -> None:
    # at depth 0 the root has no rows below it: its own cost is the whole model, 256 MACs
    report = four_linears()
    top = hotspots(table_rows(report, 0), 3, "macs")
    assert [r.total_cost.macs for r in top] == [256]


def test_operator_summary() -> None:
    report = four_linears()
    ops = {row[0]: row for row in operator_cells(report)}
    # 4 Linear calls -> 4 addmm, 4 x 64 MACs, all of the model's FLOPs
    assert ops["aten.addmm"][1:3] == ("4", "256") and ops["aten.addmm"][5] == "100.0%"
    assert "by operator type" in render_table(report)


def test_cli_sort_top_no_collapse(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.py"
    model.write_text(
        "from torch import nn\ndef make():\n"
        "    return nn.Sequential(*(nn.Linear(8, 8) for _ in range(4)))\n"
    )
    assert main(["analyze", f"{model}:make", "--input", "1x8"]) == 0
    assert "0..3 ×4" in capsys.readouterr().out
    assert main(["analyze", f"{model}:make", "--input", "1x8", "--no-collapse"]) == 0
    assert "×4" not in capsys.readouterr().out
    assert main(["analyze", f"{model}:make", "--input", "1x8", "--top", "2", "--sort", "flops"]) == 0
    assert "top 2 by own flops" in capsys.readouterr().out
    assert main(["analyze", f"{model}:make", "--sort", "latency"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--sort latency needs a chip: give --hardware or --peak")
    assert main(["analyze", f"{model}:make", "--top", "0"]) == 2
