"""``modelmeter generate``'s table (gold file, rows add up) and JSON."""

from __future__ import annotations

import json

import pytest
from render_checks import check_generation_table
from tiny_llama import TINY_LLAMA_FP16, config_source

pytest.importorskip("transformers")

from modelmeter.render.generation import render_generation  # noqa: E402
from modelmeter.usecases.generate import generate  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    source = config_source(tmp_path_factory, "tiny-llama", TINY_LLAMA_FP16)
    return generate(source, prompt=32, new=64, batch=4, hardware="h100-sxm")


def test_table_gold(tiny: object, gold) -> None:  # noqa: ANN001
    text = render_generation(tiny, "table")
    gold("tiny_generate.txt", text)
    check_generation_table(text)


def test_json(tiny: object) -> None:
    d = json.loads(render_generation(tiny, "json"))
    assert d["schema"] == "modelmeter.generation/2"
    assert d["total"]["macs"] == d["prefill"]["counts"]["macs"] + d["decode"]["total"]["macs"]
    # 2 (K, V) * 2 layers * 2 KV heads * 16 (64 / 4 heads) * 2 bytes = 256 per token
    assert d["memory"]["kv_bytes_per_token"] == 256
    assert d["memory"]["kv_bytes_total"] == 4 * 96 * 256


def test_closed_form_sum_equals_step_by_step(tiny: object) -> None:
    steps = [tiny.curve.at(c) for c in range(32, 96)]
    for k in ("macs", "flops", "bytes_read", "kv_bytes_written"):
        assert getattr(tiny.decode_total, k) == sum(getattr(s, k) for s in steps)


def test_unknown_format(tiny: object) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render_generation(tiny, "csv")


def test_timing_notes_print_under_the_times(tiny: object) -> None:
    from dataclasses import replace

    noted = replace(tiny, timing=replace(tiny.timing, notes=("bfloat16 MACs at the [x] rate",)))
    lines = render_generation(noted, "table").splitlines()
    at = lines.index("  note: bfloat16 MACs at the [x] rate")
    assert lines[at - 1].startswith("  tokens/s ")  # right under the times


def test_small_rates_keep_significant_digits() -> None:
    from modelmeter.render._common import rate_text

    # 1 token / 81.3 s = 0.0123 tokens/s: one decimal would print 0.0
    assert rate_text(1 / 81.3) == "0.0123"
    assert rate_text(0.5) == "0.5" and rate_text(0.0) == "0.0"
    assert rate_text(1234.56) == "1,234.6"  # from 1 up: one decimal, as before
