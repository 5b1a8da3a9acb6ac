"""``modelmeter hardware compare``: chips' figures side by side as ratios to the first."""

from __future__ import annotations

import json

import pytest
from cli_helpers import one_error, run


def test_ratios_are_the_datasheet_ratios(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "hardware", "compare", "h100-sxm", "a100-sxm-80gb", "-f", "json")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "modelmeter.hardware_compare/1" and d["ratios_to"] == "h100-sxm"
    bf16 = d["figures"]["BF16 peak"]
    # 312 TFLOP/s against 989.5 TFLOP/s (dense BF16 of the datasheets): 0.3153...
    assert bf16["a100-sxm-80gb"]["ratio"] == pytest.approx(312 / 989.5)
    assert bf16["h100-sxm"]["ratio"] == 1.0
    # bandwidth 2.039 TB/s against 3.35 TB/s
    assert d["figures"]["Bandwidth"]["a100-sxm-80gb"]["ratio"] == pytest.approx(2.039 / 3.35)
    # ridge of the H100: 989.5e12 / 3.35e12 = 295.4 FLOP per byte
    assert d["figures"]["Ridge (BF16/FP16/FP32)"]["h100-sxm"]["value"] == pytest.approx(295.37, abs=0.01)


def test_table_gold(capsys: pytest.CaptureFixture[str], gold):
    code, out, _ = run(capsys, "hardware", "compare", "h100-sxm", "a100-sxm-80gb", "t4")
    assert code == 0
    assert "312T (0.32x)" in out  # BF16: 312 / 989.5 = 0.315
    gold("hardware_compare.txt", out)


def test_unknown_chip_is_one_line(capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "hardware", "compare", "h100-sxm", "no-such-chip")
    assert code == 2 and "no-such-chip" in one_error(err)
