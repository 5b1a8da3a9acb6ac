"""``--columns`` chooses the columns of CSV and Markdown by the table's names, as it does the
table's: the module's name always stays, unknown names are one line and exit 2."""

from __future__ import annotations

import csv
import io

import pytest
from torch import nn

import modelmeter
from modelmeter.cli import main
from modelmeter.render import render_report
from modelmeter.render.column_choice import CSV_OWNER, MD_OWNER
from modelmeter.render.csvfmt import HEADER, ROOFLINE_HEADER, TAIL
from modelmeter.render.markdown import HEADER as MD_HEADER
from modelmeter.render.table import ROOFLINE_COLUMNS
from modelmeter.render.table_layout import column_names

MODEL = "from torch import nn\ndef make():\n    return nn.Sequential(nn.Linear(8, 4), nn.ReLU())\n"


@pytest.fixture(scope="module")
def report() -> modelmeter.Report:
    return modelmeter.analyze(nn.Sequential(nn.Linear(8, 4), nn.ReLU()), (2, 8))


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_every_csv_and_md_column_belongs_to_a_name_of_the_table() -> None:
    names = set(column_names())
    every_csv = (*HEADER, *ROOFLINE_HEADER, "flops_share", "time_share", *TAIL)
    assert set(CSV_OWNER) == set(every_csv) and set(CSV_OWNER.values()) <= names
    every_md = (*MD_HEADER, *ROOFLINE_COLUMNS)
    assert set(every_md) <= set(MD_OWNER) and set(MD_OWNER.values()) <= names


def test_csv_keeps_the_chosen_figures_and_the_row_identity(report) -> None:  # noqa: ANN001
    rows = _csv(render_report(report, "csv", columns=("macs", "pct")))
    assert rows[0] == ["name", "depth", "macs", "flops_share", "blocks"]
    # Linear 8->4 on 2 rows: 2 * 8 * 4 = 64 MACs; ReLU 0. FLOPs: linear 2*64 = 128 (bias),
    # relu 2*4 = 8 compares: total 136, the linear's share 128 / 136
    body = {r[0]: r[1:] for r in rows[1:]}
    assert body["0"] == ["1", "64", str(128 / 136), "1"]
    assert body["1"] == ["1", "0", str(8 / 136), "1"]
    root = rows[1]
    assert root[1:] == ["0", "64", "1.0", "1"]
    # without a choice: every column, no shares (the gold files' layout)
    assert _csv(render_report(report, "csv"))[0] == [*HEADER, *TAIL]


def test_csv_self_macs_keeps_every_self_field(report) -> None:  # noqa: ANN001
    rows = _csv(render_report(report, "csv", columns=("self_macs",)))
    assert rows[0] == ["name", "depth", "self_params", "self_macs", "self_flops",
                       "self_bytes_read", "self_bytes_written", "self_weight_bytes", "blocks"]  # fmt: skip
    linear = next(r for r in rows if r[0] == "0")
    # own params 8*4 + 4 = 36; own MACs 64, FLOPs 128
    assert linear[2:5] == ["36", "64", "128"]


def test_markdown_keeps_the_chosen_columns(report) -> None:  # noqa: ANN001
    md = render_report(report, "md", columns=("params", "flops"))
    lines = [s for s in md.splitlines() if s.startswith("| ")]
    assert lines[0] == "| Module | Depth | Params | FLOPs |"
    # the linear: 36 params, 128 FLOPs; the totals table below is unchanged
    assert "| 0 | 1 | 36 | 128 |" in lines
    assert "| MACs | 64 | 64 |" in md
    spec = modelmeter.load_spec("a100-sxm-80gb")
    roof = modelmeter.roofline(report, spec)
    chip = render_report(report, "md", roofline=roof, columns=("bound", "time"))
    assert "| Module | Depth | Bound | % time |" in chip
    # without a chip, bound and time have nothing to show (as in the table)
    plain = render_report(report, "md", columns=("bound", "time"))
    assert "| Module | Depth |\n" in plain


def test_cli_csv_and_md_columns_and_an_unknown_name(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # noqa: ANN001
    model = tmp_path / "m.py"
    model.write_text(MODEL)
    argv = ["analyze", f"{model}:make", "--input", "2x8", "--columns", "params,macs"]
    assert main([*argv, "-f", "csv"]) == 0
    rows = _csv(capsys.readouterr().out)
    assert rows[0] == ["name", "depth", "params", "macs", "blocks"]
    assert rows[1][2:4] == ["36", "64"]  # 8*4 + 4 params, 2*8*4 MACs
    assert main([*argv, "-f", "md"]) == 0
    assert "| Module | Depth | Params | MACs |" in capsys.readouterr().out
    for fmt in ("csv", "md"):
        assert main([*argv[:-1], "params,nope", "-f", fmt]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "unknown column nope: choose from module,type" in err[0]
    assert main([*argv, "-f", "json"]) == 2  # json holds every figure: refused, one line
    assert "--columns does not apply to -f json" in capsys.readouterr().err
