"""``analyze MODEL --hardware A,B,C``: one model on several chips side by side. Each row is
exactly that chip's own roofline; the table has a gold file; bad input is one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_helpers import one_error, run

MODEL = '''
import torch
from torch import nn


def conv():
    return nn.Conv2d(3, 16, 5), torch.zeros(1, 3, 96, 96)
'''
CHIPS = "h100-sxm,a100-sxm-80gb,t4"  # verified figures


@pytest.fixture
def model(tmp_path: Path) -> str:
    path = tmp_path / "m.py"
    path.write_text(MODEL)
    return f"{path}:conv"


def test_rows_are_each_chips_own_roofline(capsys: pytest.CaptureFixture[str], model: str):
    code, out, err = run(capsys, "analyze", model, "--hardware", CHIPS, "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == "modelmeter.chips/1" and data["batch"] == 1
    assert [r["chip"] for r in data["rows"]] == CHIPS.split(",")
    for row in data["rows"]:
        code, own, _ = run(capsys, "analyze", model, "--hardware", row["chip"], "-f", "json")
        roof = json.loads(own)["roofline"]
        assert row["latency_s"] == roof["latency_s"]
        assert row["bound"] == roof["bound"]
        assert row["throughput_per_s"] == roof["throughput_per_s"]
        # Conv2d(3, 16, 5): 1216 float32 parameters = 4864 bytes, far below any capacity
        assert row["weight_bytes"] == 4864 and row["weights_fit"] is True
    code, out, _ = run(capsys, "analyze", model, "--hardware", CHIPS, "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [float(r["latency_s"]) for r in rows] == [r["latency_s"] for r in data["rows"]]


def test_weights_that_do_not_fit(capsys: pytest.CaptureFixture[str]):
    # Llama-2-7B in float16: 6,738,415,616 params x 2 B = 13,476,831,232 B: fits the 80 GB of
    # an H100, not the 4 GB of a Jetson Nano
    code, out, _ = run(capsys, "analyze", "hf:llama-2-7b", "--hardware", "h100-sxm,jetson-nano",
                       "-f", "json")  # fmt: skip
    assert code == 0
    h100, nano = json.loads(out)["rows"]
    assert h100["weight_bytes"] == nano["weight_bytes"] == 13_476_831_232
    assert (h100["weights_fit"], nano["weights_fit"]) == (True, False)


def test_table_gold(capsys: pytest.CaptureFixture[str], model: str, gold,
                    monkeypatch: pytest.MonkeyPatch):  # fmt: skip
    monkeypatch.chdir(Path(model.rpartition(":")[0]).parent)  # the label is then m.py:conv
    code, out, _ = run(capsys, "analyze", "m.py:conv", "--hardware", CHIPS)
    assert code == 0
    gold("chips_conv.txt", out)


def test_chart(capsys: pytest.CaptureFixture[str], model: str, tmp_path: Path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "chips.svg"
    code, _, err = run(capsys, "analyze", model, "--hardware", CHIPS, "--plot", str(path))
    assert code == 0 and "wrote" in err
    assert path.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--hardware", "h100-sxm,,t4"], "empty chip name"),
        (["--hardware", "h100-sxm,no-such-chip"], "no-such-chip"),
        (["--hardware", CHIPS, "-f", "latex"], "several chips print as"),
        (["--hardware", CHIPS, "--peak", "1T"], "not both"),
        (["--hardware", CHIPS, "--plot-breakdown", "b.png"], "give one --hardware"),
    ],
)
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], model: str, extra: list[str],
                             why: str):  # fmt: skip
    code, _, err = run(capsys, "analyze", model, *extra)
    assert code == 2
    assert why in one_error(err)


def test_one_model_only(capsys: pytest.CaptureFixture[str], model: str):
    code, _, err = run(capsys, "analyze", model, model, "--hardware", CHIPS)
    assert code == 2 and "take one MODEL" in one_error(err)
