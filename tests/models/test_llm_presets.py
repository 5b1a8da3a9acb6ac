"""The shipped dense LLM presets (llama-3-8b, mistral-7b, qwen2.5-7b): the config as
published, parameters derived by hand from it, MACs at 128 tokens by hand and against
PyTorch's FlopCounterMode on the same meta model. Nothing is downloaded."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fcm_helpers import product_flops  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.models import load  # noqa: E402
from modelmeter.models.hf import preset_config, preset_names  # noqa: E402

SEQ = 128
LLM_PRESETS = ["llama-3-8b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen3-30b-a3b",
               "deepseek-v3"]


def _analyze(name: str) -> modelmeter.Report:
    """The preset at 128 tokens (2mac), checked against FlopCounterMode on the same model."""
    model = load(f"hf:{name}").model
    report = modelmeter.analyze(model, kwargs={"input_ids": f"1x{SEQ}:int64"}, convention="2mac")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=torch.zeros(1, SEQ, dtype=torch.int64, device="meta"))
    assert product_flops(report) == counter.get_total_flops()
    assert report.unsupported == {}
    return report


def test_presets_shipped_with_a_source() -> None:
    assert set(LLM_PRESETS) <= set(preset_names())
    for name in LLM_PRESETS:
        assert "configuration published with" in preset_config(name)["_source"]


def test_llama_3_8b() -> None:
    report = _analyze("llama-3-8b")
    # params: embed + lm_head 2*128256*4096 = 1,050,673,152; per layer q,o 2*4096^2 =
    # 33,554,432, k,v (8 kv heads of 128) 2*4096*1024 = 8,388,608, MLP 3*4096*14336 =
    # 176,160,768, 2 norms 8,192 -> 218,112,000 x 32 = 6,979,584,000; final norm 4,096
    # -> 8,030,261,248
    assert report.total().params == 8_030_261_248
    # bf16 as published: 2 bytes per parameter
    assert report.size_by_dtype()["native"] == 2 * 8_030_261_248
    # MACs at 128 tokens: linears 128*218,103,808 = 27,917,287,424 per layer, attention
    # QK and AV 2*32 heads*128*128*128 = 134,217,728 per layer -> x 32 = 897,648,164,864;
    # lm_head 128*4096*128256 = 67,243,081,728 -> 964,891,246,592
    assert report.total().macs == 964_891_246_592


def test_mistral_7b_sliding_window() -> None:
    model = load("hf:mistral-7b").model
    assert model.config.sliding_window == 4096
    report = _analyze("mistral-7b")
    # params: as llama-3-8b's layers (same shapes) with a 32000 vocabulary: embed + lm_head
    # 2*32000*4096 = 262,144,000 + 6,979,584,000 + 4,096 -> 7,241,732,096
    assert report.total().params == 7_241_732_096
    # MACs at 128 tokens (inside the 4096 window: every key attended): 897,648,164,864 in
    # the layers (as llama-3-8b) + lm_head 128*4096*32000 = 16,777,216,000
    assert report.total().macs == 897_648_164_864 + 16_777_216_000


def test_qwen2_5_7b() -> None:
    report = _analyze("qwen2.5-7b")
    # params: embed + lm_head 2*152064*3584 = 1,089,994,752; per layer q 3584*3584 + 3584
    # (bias) = 12,848,640, k and v (4 kv heads of 128) 3584*512 + 512 = 1,835,520 each,
    # o 3584^2 = 12,845,056, MLP 3*3584*18944 = 203,685,888, 2 norms 7,168 ->
    # 233,057,792 x 28 = 6,525,618,176; final norm 3,584 -> 7,615,616,512
    assert report.total().params == 7_615_616_512
    # MACs at 128 tokens: linears 128*(2*3584^2 + 2*3584*512 + 3*3584*18944) =
    # 128*233,046,016 = 29,829,890,048 per layer, attention 2*28*128*128*128 = 117,440,512
    # = 29,947,330,560 per layer -> x 28 = 838,525,255,680; lm_head 128*3584*152064 =
    # 69,759,664,128
    # -> 908,284,919,808 (the q/k/v biases are adds, not MACs)
    assert report.total().macs == 908_284_919_808
