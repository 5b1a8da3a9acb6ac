"""A named model built on meta whose forward needs data falls back to a real run (auto mode).

transformers checks an ``attention_mask`` with ``.item()`` (whether it masks anything), which
meta tensors cannot answer: before, ``hf:NAME`` with an attention mask failed in the default
mode, although the README promises that models needing real data fall back to a real CPU run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_gpt2 import TINY, tiny_gpt2

import modelmeter
from modelmeter.errors import ModelRunError, NeedsData
from modelmeter.usecases import analyze as analyze_module

# One GPT-2 layer, n_embd 64, 2 heads, vocab 100, 8 tokens. Per token: c_attn 64*192 = 12,288,
# attn c_proj 64*64 = 4,096, mlp c_fc 64*256 = 16,384, mlp c_proj 256*64 = 16,384, lm_head
# 64*100 = 6,400: 55,552 MACs, x 8 tokens = 444,416. Attention: 2 heads x (8*8*32 scores +
# 8*8*32 weighted values) = 8,192. Total 452,608.
MACS = 452_608
MASKED = {"input_ids": "1x8:int64", "attention_mask": "1x8:int64"}


def test_attention_mask_falls_back_to_a_real_run(tmp_path: Path) -> None:
    name = tiny_gpt2(tmp_path)
    report = modelmeter.analyze(name, kwargs=MASKED)
    assert report.mode == "real"
    assert report.total().macs == MACS
    assert any("meta-device run failed" in n and "item()" in n for n in report.notes)
    assert modelmeter.analyze(name, kwargs={"input_ids": "1x8:int64"}).total().macs == MACS


def test_meta_mode_and_large_models_do_not_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = tiny_gpt2(tmp_path)
    with pytest.raises(ModelRunError, match="item()") as meta:
        modelmeter.analyze(name, kwargs=MASKED, mode="meta")
    assert not isinstance(meta.value, NeedsData)  # asked for meta: no hint to run for real
    monkeypatch.setattr(analyze_module, "REAL_FALLBACK_BYTES", 0)
    with pytest.raises(NeedsData, match="--mode real") as caught:
        modelmeter.analyze(name, kwargs=MASKED)
    # its weights in fp32: 1 layer (c_attn 64*192+192, c_proj 64*64+64, c_fc 64*256+256,
    # mlp c_proj 256*64+64, 2 LayerNorms 2*128) + ln_f 128 + wte 100*64 + wpe 4096*64
    # = 12,480 + 4,160 + 16,640 + 16,448 + 256 + 128 + 6,400 + 262,144 = 318,656 floats
    assert caught.value.weight_bytes == 318_656 * 4
    assert modelmeter.analyze(name, kwargs=MASKED, mode="real").total().macs == MACS


def test_more_positions_than_the_config_allows_is_noted(tmp_path: Path) -> None:
    # GPT-2's position table has n_positions rows: a real run of more tokens fails (index out
    # of range), a meta run does not notice. Before, `analyze hf:gpt2 --input 1x2048` and the
    # README's `--sweep seq=128..8192` printed counts for a run that cannot happen, silently.
    config = tmp_path / "short.json"
    config.write_text(json.dumps({**TINY, "n_positions": 16}))
    name = f"hf:{config}"
    inside = modelmeter.analyze(name, kwargs={"input_ids": "1x16:int64"})
    assert not [n for n in inside.notes if "max_position_embeddings" in n]
    beyond = modelmeter.analyze(name, kwargs={"input_ids": "1x17:int64"})
    assert [n for n in beyond.notes if "max_position_embeddings" in n] == [
        f"17 token positions, more than the 16 {name} allows (max_position_embeddings): a model "
        "with learned positions (GPT-2, BERT) cannot run it, its position table has no row for "
        "them; the counts are what it would cost"
    ]
    swept = modelmeter.sweep(name, kwargs={"input_ids": "1x8:int64"}, seq=[8, 16, 32])
    assert any("32 token positions, more than the 16" in n for n in swept.notes)
    assert not modelmeter.sweep(name, kwargs={"input_ids": "1x8:int64"}, seq=[8, 16]).notes


def test_a_wrong_shape_fails_at_once_without_a_real_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a shape error on meta would fail the same way for real: no rebuild with real weights
    name = tiny_gpt2(tmp_path)
    built = []
    load = analyze_module.frontend_for(name).load
    monkeypatch.setattr(type(analyze_module.frontend_for(name)), "load",
                        lambda self, n, real=False: built.append(real) or load(n, real))  # fmt: skip
    with pytest.raises(ModelRunError, match="scalar types") as caught:
        modelmeter.analyze(name, kwargs={"input_ids": "1x8:float32"})
    assert not isinstance(caught.value, NeedsData) and built == [False]
