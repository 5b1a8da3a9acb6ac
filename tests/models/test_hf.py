"""Hugging Face presets and configs: parameter counts derived by hand, MACs against a hand count
and PyTorch's FlopCounterMode on the same meta model and input. Nothing is downloaded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from fcm_helpers import product_flops  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.errors import ModelNotFound  # noqa: E402
from modelmeter.models import load  # noqa: E402
from modelmeter.models.hf import preset_names  # noqa: E402

SEQ = 128


def _check_against_flopcounter(model: torch.nn.Module) -> modelmeter.Report:
    """Analyse with the default input (1x128 token ids, 2mac) and compare with FlopCounterMode."""
    report = modelmeter.analyze(model, kwargs={"input_ids": f"1x{SEQ}:int64"}, convention="2mac")
    ids = torch.zeros(1, SEQ, dtype=torch.int64, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    fcm = counter.get_total_flops()
    assert report.mode == "meta"
    assert 2 * report.total().cost.macs == fcm
    assert product_flops(report) == fcm
    return report


def test_presets_shipped() -> None:
    assert {"gpt2", "llama-2-7b", "llama-3-70b", "bert-base-uncased"} <= set(preset_names())


def test_gpt2_preset() -> None:
    loaded = load("hf:gpt2")
    assert loaded.kwargs == {"input_ids": "1x128:int64"}
    assert "sdpa" in loaded.label and loaded.label.startswith("hf:gpt2")
    report = _check_against_flopcounter(loaded.model)
    # params: wte 50257*768 = 38,597,376; wpe 1024*768 = 786,432; per block: ln 2*1536,
    # c_attn 768*2304+2304 = 1,771,776, attn c_proj 768*768+768 = 590,592,
    # c_fc 768*3072+3072 = 2,362,368, mlp c_proj 3072*768+768 = 2,360,064 -> 7,087,872 x 12;
    # ln_f 1,536; lm_head is tied to wte (counted once) -> 124,439,808
    assert report.total().params == 124_439_808
    # MACs at 128 tokens: per block linears 128*768*(2304+768+3072+3072) = 905,969,664,
    # attention QK^T and AV 2 * 12 heads * 128*128*64 = 25,165,824 -> 931,135,488 x 12,
    # plus lm_head 128*768*50257 = 4,940,464,128 -> 16,114,089,984
    assert report.total().cost.macs == 16_114_089_984
    assert report.unsupported == {}


def test_llama_2_7b_preset() -> None:
    loaded = load("hf:llama-2-7b")
    model = loaded.model
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (4096, 32, 32)
    assert (cfg.intermediate_size, cfg.vocab_size, cfg.max_position_embeddings) == (
        11008,
        32000,
        4096,
    )
    assert cfg.rms_norm_eps == 1e-5
    report = _check_against_flopcounter(model)
    # params: embed + lm_head 2*32000*4096 = 262,144,000; per layer q,k,v,o 4*4096^2 =
    # 67,108,864, MLP 3*4096*11008 = 135,266,304, 2 RMSNorms 8,192 -> 202,383,360 x 32;
    # final norm 4,096 -> 6,738,415,616
    assert report.total().params == 6_738_415_616
    # published weights are float16: 2 bytes per parameter
    assert report.size_by_dtype()["native"] == 2 * 6_738_415_616
    # MACs at 128 tokens: per layer 128*(4*4096^2 + 3*4096*11008) = 25,904,021,504 plus
    # attention 2 * 32 heads * 128*128*128 = 134,217,728 -> x 32 = 833,223,655,424;
    # lm_head 128*4096*32000 = 16,777,216,000 -> 850,000,871,424
    assert report.total().cost.macs == 850_000_871_424
    assert report.unsupported == {}


def test_llama_3_70b_preset() -> None:
    model = load("hf:llama-3-70b").model
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (8192, 80, 64)
    assert (cfg.num_key_value_heads, cfg.intermediate_size, cfg.vocab_size) == (8, 28672, 128256)
    assert cfg.max_position_embeddings == 8192
    report = _check_against_flopcounter(model)
    # params: embed + lm_head 2*128256*8192 = 2,101,346,304; per layer q,o 2*8192^2 =
    # 134,217,728, k,v (8 kv heads of 128) 2*8192*1024 = 16,777,216, MLP 3*8192*28672 =
    # 704,643,072, norms 16,384 -> 855,654,400 x 80; final norm 8,192 -> 70,553,706,496
    assert report.total().params == 70_553_706_496
    # MACs at 128 tokens: linears 128 * 855,638,016 per layer, attention 2*64*128*128*128
    # = 268,435,456 per layer (keys/values shared across the 8 groups, not fewer MACs),
    # lm_head 128*8192*128256
    per_layer = 128 * (2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672) + 2 * 64 * 128**3
    assert report.total().cost.macs == 80 * per_layer + 128 * 8192 * 128256
    assert report.unsupported == {}


def test_bert_preset() -> None:
    loaded = load("hf:bert-base-uncased")
    report = _check_against_flopcounter(loaded.model)
    # params: embeddings 30522*768 + 512*768 + 2*768 + LayerNorm 1,536 = 23,837,184; per layer
    # 4*(768*768+768) + 1,536 + (768*3072+3072) + (3072*768+768) + 1,536 = 7,087,872 x 12;
    # pooler 768*768+768 = 590,592 -> 109,482,240
    assert report.total().params == 109_482_240


def _tiny_llama() -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 100,
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
    }


# tiny llama params: embed + lm_head 2*100*64 = 12,800; per layer q,o 2*64*64 = 8,192,
# k,v 2*64*32 = 4,096, MLP 3*64*128 = 24,576, norms 128 -> 36,992 x 2; final norm 64
TINY_PARAMS = 12_800 + 2 * 36_992 + 64


def test_local_config_dir_and_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_tiny_llama()))
    from_dir = load(f"hf:{tmp_path}")
    from_file = load(f"hf:{tmp_path / 'config.json'}")
    for loaded in (from_dir, from_file):
        assert sum(p.numel() for p in loaded.model.parameters()) == TINY_PARAMS
        assert all(p.device.type == "meta" for p in loaded.model.parameters())
        assert not loaded.model.training
    report = modelmeter.analyze(from_dir.model, kwargs=from_dir.kwargs)
    assert report.total().params == TINY_PARAMS


def test_analyze_by_name_with_batch() -> None:
    report = modelmeter.analyze("hf:gpt2", batch=2)
    assert report.model.startswith("hf:gpt2")
    assert [(i.shape, i.dtype, i.name) for i in report.inputs] == [((2, 128), "int64", "input_ids")]
    # two sequences of the same length: every per-sequence cost, attention included,
    # doubles: 2 x 16,114,089,984
    assert report.total().cost.macs == 2 * 16_114_089_984


def test_local_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no config.json"):
        load(f"hf:{tmp_path}")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(modelmeter.ModelmeterError, match="cannot read config"):
        load(f"hf:{bad}")
    no_type = tmp_path / "notype.json"
    no_type.write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(modelmeter.ModelmeterError, match="model_type"):
        load(f"hf:{no_type}")


def test_hub_id_offline_fails_fast_naming_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelNotFound) as info:
        load("hf:no-such-org/llama-2-7b-variant")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert "hf:gpt2" in message and "hf:llama-2-7b" in message
    assert "config.json" in message
