"""Generation analysed from the model: prefill, decode steps with the KV cache, the exact
decode curve in the context, memory against capacity. Expectations derived by hand below.

Llama-2-7B (hidden 4096, 32 heads of 128, 32 KV heads, MLP 11008, vocab 32000, fp16). Per
decoder layer, a decode step's linear MACs per token are q, k, v, o: 4 * 4096^2 =
67,108,864 and the MLP's gate, up, down: 3 * 4096 * 11008 = 135,266,304, so 202,375,168;
the lm_head is 4096 * 32000 = 131,072,000. Attention over c+1 keys (the cache and the new
token): QK^T and AV are 2 * 32 heads * 128 * (c+1) = 8,192 * (c+1) MACs per layer.
Full model: 32 * 202,375,168 + 131,072,000 = 6,607,077,376 and 32 * 8,192 = 262,144 per key.
The tests build 2 layers (fast on a loaded machine) and derive the 32-layer figure from the
per-layer terms.
"""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

import pytest
from tiny_llama import MISTRAL_W16, load_model

from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.polynomial import Piecewise, Polynomial
from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.models.hf import preset_config

pytest.importorskip("transformers")

from modelmeter.frontends.torch.kvcache import trace_phase  # noqa: E402
from modelmeter.usecases.analyze import analyze  # noqa: E402
from modelmeter.usecases.generate import generate  # noqa: E402

LAYER_LINEAR = 4 * 4096**2 + 3 * 4096 * 11008  # 202,375,168
LM_HEAD = 4096 * 32000  # 131,072,000
ATTENTION_PER_KEY = 2 * 32 * 128  # 8,192 per layer


@pytest.fixture(scope="module")
def llama2(tmp_path_factory: pytest.TempPathFactory) -> object:
    config = {**preset_config("llama-2-7b"), "num_hidden_layers": 2}
    return load_model(tmp_path_factory, "llama2-2l", config)


@pytest.fixture(scope="module")
def llama2_run(llama2: object) -> object:
    # the DynamicCache as traced: these tests compare with direct traces of the model
    return generate(llama2, prompt=16, new=40, batch=2, hardware="h100-sxm", cache="dynamic")


def test_full_llama2_decode_macs_derived() -> None:
    # the figure: 6,607,077,376 + 262,144 * (c+1)
    assert 32 * LAYER_LINEAR + LM_HEAD == 6_607_077_376
    assert 32 * ATTENTION_PER_KEY == 262_144


def test_decode_macs_polynomial(llama2_run: object) -> None:
    g = llama2_run
    # batch 2, 2 layers: 2 * (2 * 202,375,168 + 131,072,000 + 2 * 8,192 * (c+1))
    per_seq = Polynomial((2 * LAYER_LINEAR + LM_HEAD + 2 * ATTENTION_PER_KEY, 2 * ATTENTION_PER_KEY))
    assert g.curve.counts["macs"] == Piecewise((16,), (Polynomial(tuple(2 * c for c in per_seq.coefficients), "c"),))
    assert g.first.macs == 2 * (2 * LAYER_LINEAR + LM_HEAD + 2 * ATTENTION_PER_KEY * 17)
    # closed-form sum over c = 16 .. 55: 40 * const + slope * sum(c+1 for c in 16..55) = 40*36.5*...
    const = 2 * (2 * LAYER_LINEAR + LM_HEAD)
    slope = 2 * 2 * ATTENTION_PER_KEY
    assert g.decode_total.macs == 40 * const + slope * sum(c + 1 for c in range(16, 56))


def test_prefill_equals_analyze(llama2: object, llama2_run: object) -> None:
    r = analyze(llama2, kwargs={"input_ids": "2x16:int64"})
    assert r.total().macs == llama2_run.prefill.total().macs
    assert r.total().flops == llama2_run.prefill.total().flops


def test_fit_equals_direct_trace_at_held_out_contexts(llama2: object, llama2_run: object) -> None:
    g = llama2_run
    pre = trace_phase(llama2, batch=2, tokens=16)
    for c in (21, 37, 50):  # none of them fitted on
        assert c not in g.curve.traced
        d = trace_phase(llama2, batch=2, tokens=1, context=c, template=pre.layers)
        report = build(d.trace)
        t = report.total().cost
        got = g.curve.at(c)
        assert (got.macs, got.flops, got.bytes_read, got.bytes_written, got.weight_bytes) == (
            t.macs, t.flops, t.bytes_read, t.bytes_written, t.weight_bytes)


def test_kv_bytes_llama2(llama2_run: object) -> None:
    m = llama2_run.memory
    # 2 (K and V) * 2 layers * 32 KV heads * 128 * 2 bytes (fp16) = 32,768; 32 layers: 524,288
    assert m.kv_per_token == 2 * 2 * 32 * 128 * 2 == 32_768
    assert m.kv_per_token * 16 == 524_288
    assert m.kv_sequence_bytes == 32_768 * 56  # 16 + 40 tokens held
    assert m.kv_by_layer == (16_384 * 56, 16_384 * 56)
    assert m.kv_total_bytes == 2 * 32_768 * 56
    # a decode step at context c reads each layer's cache in the cat and in attention
    # (c+1 tokens): the first step (c=16): reads 2 layers * 2 (K, V) * (16 + 17) tokens ...
    first = llama2_run.first
    token = 2 * 32 * 128 * 2  # one token of one sequence, K or V, one layer: 16,384 bytes
    assert first.kv_bytes_read == 2 * 2 * 2 * (16 + 17) * token // 2  # batch 2
    assert first.kv_bytes_written == 2 * 2 * 2 * 17 * token // 2  # the cat's copies


def test_kv_bytes_llama3_gqa(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
        "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
        "num_hidden_layers": 2, "vocab_size": 128256, "max_position_embeddings": 8192,
        "rope_theta": 500000.0, "torch_dtype": "bfloat16",
    }  # fmt: skip
    g = generate(load_model(tmp_path_factory, "llama3-2l", config), prompt=4, new=2)
    # 2 * 2 layers * 8 KV heads * 128 * 2 bytes = 8,192; 32 layers: 131,072
    assert g.memory.kv_per_token == 8_192
    assert g.memory.kv_per_token * 16 == 131_072


@pytest.fixture(scope="module")
def mistral(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_model(tmp_path_factory, "mistral-w16", MISTRAL_W16)


def test_sliding_window_capped(mistral: object) -> None:
    g = generate(mistral, prompt=10, new=20, cache="dynamic")
    assert g.windows == (16,)
    kv = g.memory.kv_per_sequence
    # per token: 2 (K, V) * 2 layers * 2 KV heads * 16 * 4 bytes = 512; the cache keeps the
    # last window - 1 = 15 tokens of each layer
    assert g.memory.kv_per_token == 512
    assert [int(kv(t)) for t in (1, 14, 15, 16, 200)] == [512, 14 * 512, 15 * 512, 15 * 512, 15 * 512]
    assert g.memory.kv_sequence_bytes == 15 * 512
    # attention over min(c, 15) + 1 keys: QK and AV = 2 * 4 heads * 16 = 128 MACs per key
    # per layer; the count stops growing once the window is full (c >= 15)
    macs = g.curve.counts["macs"]
    assert macs(12) - macs(11) == 2 * 128
    assert macs(29) == macs(15) and macs(16) == macs(15)
    pre = trace_phase(mistral, batch=1, tokens=10)
    for c in (13, 16, 22, 28):  # on both sides of the window, held out
        d = trace_phase(mistral, batch=1, tokens=1, context=c, template=pre.layers)
        t = build(d.trace).total().cost
        assert (g.curve.at(c).macs, g.curve.at(c).bytes_read) == (t.macs, t.bytes_read)


def test_memory_fit_agrees(llama2_run: object) -> None:
    m = llama2_run.memory
    assert m.total_bytes == m.weight_bytes + m.kv_total_bytes + 2 * m.activations_per_sequence
    small = replace(m, capacity=m.needed(5, m.tokens) + 10)
    assert small.max_batch == 5
    assert small.needed(5, m.tokens) <= small.capacity < small.needed(6, m.tokens)
    ctx = replace(m, capacity=m.needed(2, 1000) + 1)
    t = ctx.max_context
    assert ctx.needed(2, t) <= ctx.capacity < ctx.needed(2, t + 1)
    assert t == 1000
    none = replace(m, capacity=m.weight_bytes - 1)
    assert (none.max_batch, none.max_context, none.fits) == (0, 0, False)


def test_memory_closed_form_pure() -> None:
    kv = Piecewise((1,), (Polynomial((0, 100)),))
    m = GenerationMemory(1000, kv, (100,), 1, 10, 4096, 50, 20, capacity=10_000.0)
    # needed(B, T) = 1000 + B * (100 T + 50): batch at T=10: (10000-1000)/1050 = 8.57 -> 8
    assert m.max_batch == 8
    # at batch 1: 100 T + 50 <= 9000 -> T = 89
    assert m.max_context == 89
    assert m.needed(1, 89) <= 10_000 < m.needed(1, 90)


def test_timing(llama2_run: object) -> None:
    t = llama2_run.timing
    assert t is not None and t.ttft_s > 0
    assert t.decode_first_s <= t.decode_mean_s * (1 + 1e-12) and t.decode_mean_s <= t.decode_last_s * (1 + 1e-12)
    assert t.end_to_end_s == pytest.approx(t.ttft_s + t.decode_total_s)
    assert t.tokens_per_s == pytest.approx(2 * 40 / t.end_to_end_s)
    assert len(t.evaluated) >= 17 and t.exact and not t.every_context


def test_exact_total_equals_every_context(llama2: object, llama2_run: object) -> None:
    # the closed-form decode total from 17 seeded contexts (plus the bisections where a
    # bound or a queue wait changes) equals the roofline summed at all 40 contexts 16 .. 55
    every = generate(llama2, prompt=16, new=40, batch=2, hardware="h100-sxm", cache="dynamic",
                     samples=40)  # fmt: skip
    t, e = llama2_run.timing, every.timing
    assert t is not None and e is not None and e.every_context and not t.every_context
    assert t.decode_total_s == pytest.approx(e.decode_total_s, rel=1e-12)
    assert t.end_to_end_s == pytest.approx(e.end_to_end_s, rel=1e-12)


def test_every_context_when_few(llama2: object) -> None:
    g = generate(llama2, prompt=8, new=5, hardware="h100-sxm")
    assert g.timing is not None and g.timing.every_context and g.timing.evaluated == (8, 9, 10, 11, 12)


def test_json_schema(llama2_run: object) -> None:
    d = json.loads(json.dumps(llama2_run.to_dict()))
    assert d["schema"] == "modelmeter.generation/2"
    assert d["decode"]["curve"]["counts"]["macs"]["pieces"][0]["from"] == 16
    assert Fraction(d["total"]["macs"]) == llama2_run.total.macs
    assert d["prefill"]["report"]["schema"] == "modelmeter.report/1"


def test_bad_input(llama2: object) -> None:
    with pytest.raises(InputError, match="4096 positions"):
        generate(llama2, prompt=4000, new=200)
    with pytest.raises(InputError, match="batch"):
        generate(llama2, prompt=4, new=2, batch=0)
    with pytest.raises(InputError, match="decoder"):
        generate("hf:bert-base-uncased", prompt=4, new=2)


def test_kv_format_prices_cache(llama2: object) -> None:
    g = generate(llama2, prompt=4, new=2, kv="fp8", weights="int4", cache="dynamic")
    # fp8 cache: 1 byte per element: 2 (K, V) * 2 layers * 32 heads * 128 = 16,384 per token
    assert g.memory.kv_per_token == 16_384
    assert "KV cache fp8" in g.storage and "int4" in g.storage
    # counts do not change with formats: the same MACs as the fp16 run
    plain = generate(llama2, prompt=4, new=2)
    assert g.total.macs == plain.total.macs
    # the first step's cache reads at 1 byte: 2 layers * 2 (K, V) * (4 + 5) tokens * 4,096
    assert g.first.kv_bytes_read == 2 * 2 * (4 + 5) * 32 * 128
    assert g.memory.weight_bytes < plain.memory.weight_bytes
    with pytest.raises(InputError, match="KV-cache format"):
        generate(llama2, prompt=4, new=2, kv="int3")


def test_moe_decode_reads_expected_experts(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = {**preset_config("mixtral-8x7b"), "num_hidden_layers": 2}
    model = load_model(tmp_path_factory, "mixtral-2l", config)
    # one expert layer's stacked weights: 8 experts x 3 x 4096 x 14336 x 2 bytes (bf16)
    layer = 8 * 3 * 4096 * 14336 * 2  # 2,818,572,288
    one = generate(model, prompt=8, new=2, batch=1)
    traced = one.decode.total().cost.weight_bytes  # every expert's weights, as traced
    # batch 1: the token reads k = 2 experts of 8, so 6/8 of each layer's stack is not read
    assert traced - one.first.weight_bytes == 2 * layer * 6 // 8 == 4_227_858_432
    four = generate(model, prompt=8, new=2, batch=4)
    # batch 4: 8 * (1 - (6/8)**4) = 8 * 175/256 experts touched; 81/256 not read
    traced = four.decode.total().cost.weight_bytes  # (the embedding reads 4 rows now)
    assert traced - four.first.weight_bytes == 2 * layer * 81 // 256 == 1_783_627_776
    assert four.first.bytes_read == four.decode.total().cost.bytes_read - 1_783_627_776
    assert any("mixture of experts" in n for n in four.notes)
    # counts are untouched
    assert four.first.macs == four.decode.total().cost.macs
