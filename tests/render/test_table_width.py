"""The module table fits its width by dropping columns and shortening names, never by cutting
a number: rendered at 60, 80, 120 and 200 columns and through a pipe, every numeric cell
parses back to the unabbreviated value's text."""

from __future__ import annotations

import pytest
import torch
import torchvision
from render_checks import check_table
from torch import nn

import modelmeter
from modelmeter.cli import main
from modelmeter.errors import InputError
from modelmeter.render.table import render_table, table_cells, table_columns
from modelmeter.render.table_layout import COLUMN_KEYS, parse_columns, shorten_name
from modelmeter.report import Report

TEXT_COLUMNS = {"Module", "Type", "Output shape", "Bound"}
SHORT = {short: full for full, (_, short) in COLUMN_KEYS.items()}
WIDTHS = (60, 80, 120, 200)


@pytest.fixture(scope="module")
def resnet50() -> Report:
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    return modelmeter.analyze(model.eval(), "1x3x224x224", mode="meta")


class Deep(nn.Module):
    """Long module names four levels down."""

    def __init__(self) -> None:
        super().__init__()
        inner = nn.Sequential(*(nn.Linear(64, 64) for _ in range(3)))
        self.encoder_with_a_very_long_name = nn.ModuleDict(
            {"transformer_layers_block": nn.Sequential(inner)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder_with_a_very_long_name["transformer_layers_block"](x)


def shown_cells(text: str) -> tuple[list[str], list[list[str]]]:
    """The header (full names) and body cells of the first table in ``text``."""
    lines = text.splitlines()
    body = [s for s in lines if s.startswith("│")]
    split = [[c.strip() for c in s.strip("│").split("│")] for s in body]
    return [SHORT.get(h, h) for h in split[0]], split[1:]


def assert_numbers_whole(text: str, report: Report, depth: int | None) -> None:
    header, rows = shown_cells(text)
    full = list(table_columns())
    expect = table_cells(report, depth)
    assert len(rows) == len(expect)
    assert {"Params", "MACs", "FLOPs"} <= set(header)
    for got, want in zip(rows, expect):
        for col, cell in zip(header, got):
            if col in TEXT_COLUMNS:
                continue
            assert "…" not in cell
            assert cell == want[full.index(col)], (col, cell)


@pytest.mark.parametrize("width", WIDTHS)
def test_resnet50_depth1_numbers_are_never_cut(resnet50: Report, width: int) -> None:
    text = render_table(resnet50, 1, width=width)
    assert "…" not in text.split("╰")[0]
    assert max(len(s) for s in text.split("╰")[0].splitlines()) <= width
    assert_numbers_whole(text, resnet50, 1)
    check_table(render_table(resnet50, 1), resnet50, 1)  # the rows still add up (full width)


def test_wide_keeps_every_column_narrow_drops_low_priority_first(resnet50: Report) -> None:
    assert shown_cells(render_table(resnet50, 1, width=200))[0] == list(table_columns())
    # 80 columns: Params, MACs, own MACs, FLOPs and the type stay; shapes, calls, bytes go
    header = shown_cells(render_table(resnet50, 1, width=80))[0]
    assert header == ["Module", "Type", "Params", "MACs", "Self MACs", "FLOPs"]
    header = shown_cells(render_table(resnet50, 1, width=60))[0]
    assert header == ["Module", "Params", "MACs", "Self MACs", "FLOPs"]


@pytest.mark.parametrize("width", WIDTHS)
def test_long_names_shortened_from_the_middle(width: int) -> None:
    report = modelmeter.analyze(Deep(), "1x64", mode="meta")
    text = render_table(report, None, width=width)
    assert_numbers_whole(text, report, None)
    assert max(len(s) for s in text.split("╰")[0].splitlines()) <= width


def test_shorten_name_keeps_guides_and_last_part() -> None:
    # 3 guide characters + 14 of room: "encoder" (7) + "…" + the last part "layer_11" ... too
    # long by one, so the head keeps 14 - 8 - 1 = 5 characters
    assert shorten_name("├─ encoder.layers.layer_11", 17) == "├─ encod…layer_11"
    assert shorten_name("│  └─ short", 20) == "│  └─ short"
    assert len(shorten_name("└─ " + "x" * 40, 12)) == 12


def test_columns_chosen_and_unknown_names() -> None:
    assert parse_columns("params, MACs,flops") == ("params", "macs", "flops")
    with pytest.raises(InputError, match="unknown column bogus: choose from module,type"):
        parse_columns("params,bogus")
    # every name offered is a column of the table (with a roofline: latency, bound, time)
    from modelmeter.render.table_layout import column_names

    headers = set(table_columns()) | {"Latency", "Bound", "% time"}
    assert {COLUMN_KEYS[h][0] for h in headers} == set(column_names())


def test_cli_columns_and_pipe_width(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    model = tmp_path / "m.py"
    model.write_text(
        "from torch import nn\ndef make():\n    return nn.Sequential(nn.Linear(8, 8), nn.ReLU())\n"
    )
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analyze", f"{model}:make", "--input", "1x8", "--columns", "macs,flops"]) == 0
    out = capsys.readouterr().out
    assert shown_cells(out)[0] == ["Module", "MACs", "FLOPs"]
    assert max(len(s) for s in out.split("╰")[0].splitlines()) <= 80
    assert main(["analyze", f"{model}:make", "--columns", "macs,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "unknown column nope: choose from" in err[-1]


def test_columns_go_before_names_are_shortened() -> None:
    from modelmeter.render.table_layout import fit

    cols = ("Module", "Type", "Calls", "Params", "MACs", "FLOPs", "Output shape")
    name = "├─ a_really_long_module_name_here"  # 33 characters
    rows = [(name, "T", "1", "1", "2", "3", "1x2x3x4x5")]
    # without Calls and Output shape: 33 + 4 + 6 + 4 + 5 = 52 characters of cells, plus
    # 3 per column and 1 for the last border = 68: the name fits whole
    layout = fit(cols, rows, 68)
    assert layout.columns == ("Module", "Type", "Params", "MACs", "FLOPs")
    assert layout.rows[0][0] == name
    # one less: the name is shortened to 24 (guides and the end kept) before Type goes
    layout = fit(cols, rows, 67)
    assert layout.columns == ("Module", "Type", "Params", "MACs", "FLOPs")
    assert layout.rows[0][0] == shorten_name(name, 24) and len(layout.rows[0][0]) == 24


@pytest.mark.parametrize("width", (20, 30, 40))
def test_narrower_than_the_fewest_columns_lines_grow_numbers_stay_whole(
    resnet50: Report, width: int
) -> None:
    # Module (shortened to 10) + Params + MACs + FLOPs need 10 + 7 + 7 + 7 cells, 3 characters
    # of border and padding each, + 1 = 44 columns. Before, a 40-column console cut the
    # lines at 40: FLOPs "8.21G" read "8.21", "235.23M" "235.23", and the right border was gone.
    text = render_table(resnet50, 1, width=width)
    table = [s for s in text.split("╰")[0].splitlines() if s.startswith(("│", "╭"))]
    assert {len(s) for s in table} == {44}
    assert_numbers_whole(text, resnet50, 1)
