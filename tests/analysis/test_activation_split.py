"""Saved activations per device under tensor, sequence and pipeline parallelism, against
Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"):
s*b*h*(10 + 24/t + 5*a*s/(h*t)) bytes per layer in half precision without recomputation under
tensor parallelism of degree t, s*b*h*(34/t + 5*a*s/(h*t)) with sequence parallelism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpt_layers import GPT, GPTLayer

from modelmeter.analysis.activation_split import (
    ActivationPlaces,
    chunk_layers,
    in_flight,
    places_of,
    stage_activations,
)
from modelmeter.usecases.train import train

B, S, H, A = 2, 64, 128, 4
SBH = S * B * H  # 16,384 elements: 32,768 bytes in bf16
SB = S * B


def _layer(t: int, **kw):  # noqa: ANN003, ANN202
    return train(GPTLayer(H, A), (B, S, H), precision="bf16", optimizer="sgd", devices=t,
                 tensor=t, **kw)  # fmt: skip


def test_the_tensor_parallel_region_of_a_gpt_layer() -> None:
    r = _layer(2)
    split = sum(n for _, n, inside in r.memory.saved_storages if inside)
    full = sum(n for _, n, inside in r.memory.saved_storages if not inside)
    # inside the column -> row-parallel region (bytes, bf16): the contiguous Q, K^T, V copies
    # the matmuls keep 3 x 2sbh = 6sbh, the context 2sbh, fc1's output (GeLU input) 8sbh, the
    # GeLU's output (fc2's input) 8sbh = 24sbh; softmax output, dropout mask (bf16 on the CPU)
    # and dropped scores 3 x 2as^2b = 6as^2b
    assert split == 24 * SBH + 6 * A * S * S * B == 589_824
    # outside (whole on each device): ln1's and ln2's outputs 2 x 2sbh, the residual sum 2sbh,
    # the two hidden dropout masks (bf16) 2 x 2sbh, the layer's output 2sbh = 12sbh; the two
    # LayerNorms' mean and 1/std in fp32: 2 x 2 x sb x 4 = 16sb
    assert full == 12 * SBH + 16 * SB == 198_656
    assert split + full == r.memory.activations == 788_480


@pytest.mark.parametrize("t", [1, 2, 4])
def test_a_gpt_layer_per_device_against_korthikanti_under_tensor_parallelism(t: int) -> None:
    # the paper (half precision, 1-byte dropout masks, no LayerNorm statistics):
    #   s b h (10 + 24/t + 5 a s/(h t)) = 10 sbh + (24 sbh + 5 a s^2 b) / t bytes
    # 10 sbh: LayerNorm inputs 2 x 2sbh, QKV input 2sbh, MLP input 2sbh, the two hidden
    # dropout masks 2 x sbh (whole on every device); 24 sbh / t as above; 5as^2b / t: softmax
    # output 2as^2b, its mask as^2b, dropout output 2as^2b
    paper = 10 * SBH + (24 * SBH + 5 * A * S * S * B) // t
    # the trace in addition: the hidden masks in bf16 (+2 sbh, whole), the attention mask in
    # bf16 (+as^2b, split: / t), the LayerNorms' statistics (+16 sb, whole)
    extra = 2 * SBH + A * S * S * B // t + 16 * SB
    r = train(GPTLayer(H, A), (B, S, H), precision="bf16", optimizer="sgd",
              devices=max(t, 2), tensor=t)  # t = 1: two data-parallel replicas  # fmt: skip
    a = r.device_activations
    assert a.micro_batch == a.held == paper + extra
    # t = 1: 163,840 + (393,216 + 163,840) = 720,896, the paper's 34 sbh + 5as^2b; extra
    #        32,768 + 32,768 + 2,048 = 67,584: 788,480, the whole layer
    # t = 2: 163,840 + 278,528 = 442,368; extra 32,768 + 16,384 + 2,048 = 51,200: 493,568
    # t = 4: 163,840 + 139,264 = 303,104; extra 32,768 + 8,192 + 2,048 = 43,008: 346,112
    assert a.micro_batch == {1: 788_480, 2: 493_568, 4: 346_112}[t]


@pytest.mark.parametrize("t", [2, 4])
def test_sequence_parallelism_divides_every_saved_activation(t: int) -> None:
    # the paper: s b h (34/t + 5 a s/(h t)); the trace: its 788,480 bytes / t (the extras
    # split along the sequence too): 394,240 at t = 2, 197,120 at t = 4
    r = _layer(t, sequence_parallel=True)
    paper = (34 * SBH + 5 * A * S * S * B) // t
    extra = (2 * SBH + A * S * S * B + 16 * SB) // t
    assert r.device_activations.held == paper + extra == 788_480 // t


def _gpt2(tmp_path: Path, kind: str) -> str:
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64,
           "n_head": 4, "n_layer": 2, "n_positions": 256, "vocab_size": 100,
           "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip
    if kind == "llama":
        cfg.update({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "num_hidden_layers": 2})  # fmt: skip
    path = tmp_path / f"{kind}.json"
    path.write_text(json.dumps(cfg))
    return f"hf:{path}"


@pytest.mark.parametrize("t", [2, 4])
def test_gpt2_from_transformers_keeps_the_papers_whole_terms(tmp_path: Path, t: int) -> None:
    b, s, h = 2, 32, 64
    sbh = s * b * h  # 4,096
    r = train(_gpt2(tmp_path, "gpt2"), f"{b}x{s}", precision="bf16", optimizer="sgd",
              devices=t, tensor=t)  # fmt: skip
    places = places_of(r.report, r.memory)
    # each layer's whole part is the GPT layer's above: 12 sbh + 16 sb = 49,152 + 1,024; the
    # attention (transformers' functional attention in GPT2Attention's forward) and the MLP
    # (its tanh GeLU saves its intermediates) are all in the split region
    assert [f for f, _ in places.layers] == [12 * sbh + 16 * s * b] * 2 == [50_176] * 2
    # before the layers (whole): the embedding dropout's mask and output, 2 x 2sbh, and the
    # position ids wpe's backward needs (int64: s x 8 = 256 bytes); after the layers: ln_f's
    # output and statistics (whole), the logits s b V x 2 = 12,800 (split: the
    # vocabulary-parallel head)
    assert places.before == (2 * 2 * sbh + 8 * s, 0) == (16_640, 0)
    assert places.after == (2 * sbh + 2 * s * b * 4, 2 * s * b * 100)
    split = [x for _, x in places.layers]
    per_device = sum(f + -(-x // t) for f, x in (places.before, *places.layers, places.after))
    assert r.device_activations.held == per_device and split[0] == split[1]


def test_a_llama_layer_splits_all_but_its_norms(tmp_path: Path) -> None:
    r = train(_gpt2(tmp_path, "llama"), "2x32", precision="bf16", optimizer="sgd",
              devices=2, tensor=2)  # fmt: skip
    places = places_of(r.report, r.memory)
    by = r.memory.saved_by_scope
    for i, (full, split) in enumerate(places.layers):
        p = f"model.layers.{i}."
        # whole: what the two RMSNorms keep (fp32 input, 1/rms, the normalised half copy);
        # split: everything the attention (q, k, v after RoPE, SDPA's output and log-sum-exp)
        # and the MLP (gate, up, SiLU, their product) keep
        norms = by[p + "input_layernorm"] + by[p + "post_attention_layernorm"]
        inner = sum(v for k, v in by.items() if k.startswith((p + "self_attn", p + "mlp")))
        assert (full, split) == (norms, inner)


def test_chunks_and_the_schedules_in_flight() -> None:
    # 10 layers over 4 stages: 3, 3, 2, 2 (the first L mod p stages one more)
    assert chunk_layers(10, 4, 1) == [3, 3, 2, 2]
    # 1F1B: stage s holds min(p - s, m) micro-batches; GPipe m
    assert in_flight(0, 4, 1, 8, "1f1b", [5] * 4) == (20, 4.0)
    assert in_flight(3, 4, 1, 8, "1f1b", [5] * 4) == (5, 1.0)
    assert in_flight(0, 4, 1, 2, "1f1b", [5] * 4) == (10, 2.0)  # m < p
    assert in_flight(2, 4, 1, 8, "gpipe", [5] * 4) == (40, 8.0)
    # interleaved, v = 2, p = 4, m = 8, equal chunks: stage 0 runs 2(p-1) + (v-1)p = 10
    # warm-up chunk-forwards, then one forward before each backward: 11 chunks of L/(pv)
    # layers; its 2 chunks make one micro-batch of its layers, so 5.5 micro-batches =
    # p (1 + (p-1)/(p v)) = 4 x (1 + 3/8) (Narayanan et al. 2021)
    assert in_flight(0, 4, 2, 8, "1f1b", [1] * 8) == (11, 5.5)
    # the last stage: 2(p-1-3) + (v-1)p = 4 warm-up, 5 chunks
    assert in_flight(3, 4, 2, 8, "1f1b", [1] * 8) == (5, 2.5)
    # m = p: every forward before any backward (Megatron-LM's schedule): m v = 8 chunks
    assert in_flight(0, 4, 2, 4, "1f1b", [1] * 8) == (8, 4.0)


def test_pipeline_stages_of_a_gpt() -> None:
    b, s, h, a = 2, 16, 32, 4
    sbh = s * b * h  # 1,024
    kw = {"precision": "bf16", "optimizer": "sgd", "devices": 2, "pipeline": 2,
          "micro_batches": 4}  # fmt: skip
    layer = 12 * sbh + 16 * s * b + 24 * sbh + 6 * a * s * s * b  # 12,800 + 36,864 = 49,664
    emb, final = 2 * sbh, 2 * sbh + 2 * s * b * 4  # 2,048 (embedding), 2,304 (ln: out + stats)
    r = train(GPT(h, a, 4), f"{b}x{s}:int64", **kw)
    assert places_of(r.report, r.memory) == ActivationPlaces(
        (emb, 0), ((12 * sbh + 16 * s * b, 24 * sbh + 6 * a * s * s * b),) * 4, (final, 0))
    # 1F1B, p = 2, m = 4: stage 0 holds min(2, 4) = 2 micro-batches of the embedding and 2
    # layers: 2 x (2,048 + 2 x 49,664) = 202,752; stage 1 one of 2 layers and the final
    # norm: 101,632
    a1 = r.device_activations
    assert (a1.stage, a1.in_flight, a1.micro_batch, a1.held) == (0, 2, 101_376, 202_752)
    # GPipe: all 4 micro-batches on every stage; the last stage's are the larger
    acts = stage_activations(places_of(r.report, r.memory), 1, 2, 4, schedule="gpipe")
    assert [x.held for x in acts] == [4 * (emb + 2 * layer), 4 * (2 * layer + final)]
    assert [x.held for x in acts] == [405_504, 406_528]
    # the device reported is the stage with the largest peak (its model states and
    # activations together: stage 0, with the embedding's states), with that stage's figures
    g = train(GPT(h, a, 4), f"{b}x{s}:int64", schedule="gpipe", **kw)
    assert g.device_activations == acts[g.device_peak.stage]
    # interleaved, v = 2: 4 chunks of one layer, stage 0 holds chunks 0 (with the embedding)
    # and 2. Megatron's order: forwards k = 0, 1, ... run chunk (k mod pv) // p (0, 0, 2, 2,
    # 0, 0, 2, 2: groups of p micro-batches), backwards the mirror (2, 2, 0, 0, ...). Its
    # 2(p-1) + (v-1)p = 4 warm-up forwards hold 2 x 51,712 + 2 x 49,664; then forward 4
    # (chunk 0), backward 0 (chunk 2), forward 5 (chunk 0): 4 chunk-0 micro-batches and one
    # chunk-2: 4 x (2,048 + 49,664) + 49,664 = 256,512, the most (5 chunks = vp + p - 1)
    v = train(GPT(h, a, 4), f"{b}x{s}:int64", virtual_stages=2, **kw).device_activations
    assert (v.stage, v.held, v.schedule) == (0, 4 * (emb + layer) + layer, "interleaved 1f1b")
    assert v.held == 256_512


def test_tensor_and_pipeline_together() -> None:
    # t = 2 and p = 2 over 4 devices: each layer 12,800 + 36,864 / 2 = 31,232 on a device;
    # stage 0 holds 2 micro-batches of (2,048 + 2 x 31,232) = 2 x 64,512 = 129,024
    r = train(GPT(32, 4, 4), "2x16:int64", precision="bf16", optimizer="sgd", devices=4,
              tensor=2, pipeline=2, micro_batches=4)  # fmt: skip
    assert r.device_activations.held == 2 * (2048 + 2 * (12_800 + 36_864 // 2)) == 129_024


def test_gpt2_from_transformers_over_pipeline_schedules(tmp_path: Path) -> None:
    b, s, h = 2, 32, 64
    sbh = s * b * h  # 4,096
    path = tmp_path / "gpt2-4.json"
    cfg = json.loads(Path(_gpt2(tmp_path, "gpt2")[3:]).read_text())
    path.write_text(json.dumps({**cfg, "n_layer": 4}))
    kw = {"precision": "bf16", "optimizer": "sgd", "pipeline": 2, "micro_batches": 4}
    r = train(f"hf:{path}", f"{b}x{s}", devices=2, **kw)
    places = places_of(r.report, r.memory)
    before, after = sum(places.before), sum(places.after)
    layer = sum(places.layers[0])
    # before: 16,640 (above); each layer 12 sbh + 16 sb + its split part; after: ln_f 8,704
    # and the logits 12,800
    assert (before, after) == (16_640, 2 * sbh + 2 * s * b * 4 + 2 * s * b * 100)
    # 1F1B, p = 2, m = 4: stage 0 holds 2 micro-batches of (before + 2 layers), stage 1 one
    # of (2 layers + after): the first is the larger
    a = r.device_activations
    assert (a.stage, a.held) == (0, 2 * (before + 2 * layer))
    # interleaved, v = 2 (4 chunks of one layer): stage 0 holds 4 of chunk 0 (before + layer)
    # and one of chunk 2 (as for the GPT above)
    v = train(f"hf:{path}", f"{b}x{s}", devices=2, virtual_stages=2, **kw).device_activations
    assert v.held == 4 * (before + layer) + layer
    # with t = 2 and sequence parallelism every place is halved (rounded up): the same
    # schedule over 4 devices holds 2 x (8,320 + 2 x layer / 2)
    t = train(f"hf:{path}", f"{b}x{s}", devices=4, tensor=2, sequence_parallel=True,
              **kw).device_activations  # fmt: skip
    assert t.held == 2 * (before // 2 + 2 * (layer // 2))
