"""``modelmeter train --optimizer adamw8bit``: bitsandbytes' 8-bit optimizers on the command
line; without bitsandbytes one line says how to install it (exit 2)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from cli_helpers import one_error, run

# Linear(64, 4096) + Linear(4096, 8): weights 262,144 and 32,768 elements (8-bit states),
# biases 4,096 (8-bit: not fewer than 4,096) and 8 (fp32 states)
MLP = ("import torch.nn as nn\n\n\ndef f():\n"
       "    return nn.Sequential(nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 8))\n")  # fmt: skip
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "m.py").write_text(MLP, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return "m.py:f"


def test_help_lists_the_8bit_optimizers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert "adam8bit, adamw8bit (default adamw" in flat
    assert "pip install modelmeter[train8bit]" in flat


@pytest.mark.parametrize("optimizer", ["adam8bit", "adamw8bit"])
def test_without_bitsandbytes_one_line_exit_2(capsys: pytest.CaptureFixture[str], model: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             optimizer: str) -> None:  # fmt: skip
    # None in sys.modules makes the import fail as if the package were not installed
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    monkeypatch.setitem(sys.modules, "bitsandbytes.optim", None)
    code, out, err = run(capsys, "train", model, "-i", "2x64", "--optimizer", optimizer)
    assert (code, out) == (2, "")
    line = one_error(err)
    assert "bitsandbytes" in line and "pip install modelmeter[train8bit]" in line


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed")
def test_adamw8bit_table_and_json(capsys: pytest.CaptureFixture[str], model: str) -> None:
    code, out, err = run(capsys, "train", model, "-i", "2x64", "--optimizer", "adamw8bit",
                         "-f", "json")  # fmt: skip
    assert code == 0 and err == "", err
    d = json.loads(out)
    assert (d["optimizer"], d["variant"]) == ("adamw8bit", "fused")
    # parameters: 262,144 + 4,096 + 32,768 + 8 = 299,016. States: uint8 for the 299,008 of
    # the three 8-bit tensors, fp32 for the 8-element bias (32 B), each of state1, state2:
    # (299,008 + 32) x 2 = 598,080; absmax: (1,024 + 16 + 128) blocks x 4 B x 2 = 9,344;
    # the code maps 2,048 -> 609,472 B; fp32 weights and gradients 8 x 299,016 = 2,392,128
    assert d["memory"]["model_states"] == 2_392_128 + 609_472
    code, out, _ = run(capsys, "train", model, "-i", "2x64", "--optimizer", "adamw8bit")
    assert code == 0
    assert "AdamW 8-bit (bitsandbytes), fused" in out
    assert "optimizer states: state1" in out
