"""``generate(..., tensor_parallel=T)``: one device of T serving a replica. Expectations
derived by hand below (the tiny Llama of tests/tiny_llama.py, float32: hidden 64, 4 heads
of 16, 2 KV heads, MLP 128, vocab 256, 2 layers; its weights per device are derived in
tests/analysis/test_serving_parallel.py: 214,272 bytes at T = 2, 115,968 at T = 4).

Llama-3-70B (bf16): hidden H = 8,192, 80 layers, 64 heads of 128, 8 KV heads (1,024
features), MLP 28,672, vocab 128,256, untied. Per layer: q and o 8,192^2 = 67,108,864 each,
k and v 8,192 x 1,024 = 8,388,608 each, gate/up/down 3 x 8,192 x 28,672 = 704,643,072,
norms 2 x 8,192 = 16,384: 855,654,400. Embedding and lm_head 128,256 x 8,192 =
1,050,673,152 each, final norm 8,192. Whole: 80 x 855,654,400 + 2 x 1,050,673,152 + 8,192 =
70,553,706,496 parameters. Replicated (the norms): 80 x 16,384 + 8,192 = 1,318,912
parameters = 2,637,824 bytes; split: 70,552,387,584 parameters = 141,104,775,168 bytes,
/ 8 = 17,638,096,896. Per device at T = 8: 17,638,096,896 + 2,637,824 = 17,640,734,720
bytes (not 70,553,706,496 x 2 / 8 = 17,638,426,624: the norms are whole on each device).
"""

from __future__ import annotations

import math

import pytest
from tiny_llama import TINY_LLAMA, load_model

from modelmeter.analysis.generation_time import GenerationTiming
from modelmeter.errors import InputError

pytest.importorskip("transformers")

from modelmeter.usecases.generate import generate  # noqa: E402
from modelmeter.usecases.generate_tp import with_communication  # noqa: E402

NVLINK4 = 450e9  # bytes/s per direction (hardware/links.py), 2 us per ring step


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_model(tmp_path_factory, "tiny", TINY_LLAMA)


@pytest.fixture(scope="module")
def runs(tiny: object) -> dict[int, object]:
    return {t: generate(tiny, prompt=8, new=4, batch=2, hardware="h100-sxm",
                        tensor_parallel=t) for t in (1, 2, 4)}  # fmt: skip


def test_one_device_is_unchanged(tiny: object, runs: dict) -> None:
    plain = generate(tiny, prompt=8, new=4, batch=2, hardware="h100-sxm")
    assert runs[1].tensor_parallel is None
    assert runs[1].memory == plain.memory and runs[1].timing == plain.timing
    assert runs[1].to_dict()["tensor_parallel"] is None


def test_memory_per_device_t2(runs: dict) -> None:
    m1, m2 = runs[1].memory, runs[2].memory
    assert m2.weight_bytes == 214_272
    # KV per token: 2 layers x (K, V) x 2 kv heads x 16 x 4 bytes = 512; one of the 2 kv
    # heads per device: 256. 12 tokens in one paged block of 16: 16 x 256 = 4,096 per
    # sequence, 8,192 for the batch of 2
    assert m1.kv_per_token == 512 and m2.kv_per_token == 256
    assert m2.kv_sequence_bytes == 4_096 and m2.kv_total_bytes == 8_192
    plan = runs[2].tensor_parallel
    # the traced peaks (the whole replica's) times the replayed shares, rounded up
    pre = m1.prefill_activation_bytes * plan.prefill_activation_share
    assert m2.prefill_activation_bytes == math.ceil(pre)
    dec = m1.decode_activation_bytes * plan.decode_activation_share
    assert m2.decode_activation_bytes == math.ceil(dec)
    assert 0 < plan.prefill_activation_share < 1
    # the rule, per device: weights + batch x (kv + activations)
    assert m2.total_bytes == 214_272 + 2 * (4_096 + m2.activations_per_sequence)


def test_device_counts_t2(runs: dict) -> None:
    plan = runs[2].tensor_parallel
    # prefill of B x P = 16 tokens: 1,474,560 MACs (tests/analysis/test_serving_parallel.py),
    # every one in a split op: 737,280 per device
    assert runs[2].prefill_counts.macs == 1_474_560
    assert plan.prefill_device.macs == 737_280
    # decode at context 8, batch 2: 2 x (2 x 36,864 + 16,384 linear MACs + 2 layers x 2 x
    # 4 heads x 16 x (8 + 1) keys) = 2 x (90,112 + 2,304) = 184,832, no other op with
    # MACs: half per device
    assert runs[2].first.macs == 2 * (90_112 + 2 * 2 * 4 * 16 * 9) == 184_832
    assert plan.decode_device.macs == 92_416
    # weights read per device in a decode step: the linear layers and lm_head, (73,728 +
    # 16,384) x 4 = 360,448 bytes, / 2 = 180,224; whole on each device: the embedding's 2
    # looked-up rows 2 x 64 x 4 = 512, the norms' 1,280 and the rotary inv_freq buffer (8
    # x 4 = 32): 182,048 (the replica reads 360,448 + 1,824 = 362,272)
    assert runs[2].first.weight_bytes == 362_272
    assert plan.decode_device.weight_bytes == 180_224 + 512 + 1_280 + 32 == 182_048


def test_all_reduces_per_decode_step_t2(runs: dict) -> None:
    plan = runs[2].tensor_parallel
    dec, pre = plan.decode, plan.prefill
    # 2 per layer x 2 layers + 1 after the embedding = 5 all-reduces of the layer output:
    # decode B x 1 x H x 4 = 2 x 64 x 4 = 512 bytes, prefill 2 x 8 x 64 x 4 = 4,096; the
    # logits of the last position gathered: B x V x 4 = 2 x 256 x 4 = 2,048
    assert (dec.all_reduces, dec.all_reduce_bytes, dec.gather_bytes) == (5, 512, 2_048)
    assert (pre.all_reduces, pre.all_reduce_bytes) == (5, 4_096)
    # a ring of 2 sends 2(2-1)/2 x 512 = 512 per all-reduce, (2-1)/2 x 2,048 = 1,024 for
    # the gather: 5 x 512 + 1,024 = 3,584 bytes per device per step
    assert dec.sent == 3_584
    # 2(T-1) = 2 steps of 2 us per all-reduce, 1 step for the gather
    expect = 5 * (2 * 2e-6 + 512 / NVLINK4) + 2e-6 + 1_024 / NVLINK4
    assert dec.time_s == pytest.approx(expect, rel=1e-12)
    assert plan.link == "nvlink4"


def test_communication_is_in_the_times(runs: dict) -> None:
    t, plan = runs[2].timing, runs[2].tensor_parallel
    # every decode step pays the same all-reduces: total = sum of the step times
    assert t.decode_total_s == pytest.approx(sum(t.times), rel=1e-12)
    assert min(t.times) > plan.decode.time_s
    assert t.ttft_s > plan.prefill.time_s


def test_with_communication_adds_to_every_phase(runs: dict) -> None:
    plan = runs[2].tensor_parallel
    base = GenerationTiming("x", 2, 10, 1.0, "compute", 0.1, 0.2, 1.5, "memory", "memory",
                            (8, 17), (0.1, 0.2))  # fmt: skip
    out = with_communication(base, plan, 10)
    pre, dec = plan.prefill.time_s, plan.decode.time_s
    assert out.ttft_s == 1.0 + pre
    assert (out.decode_first_s, out.decode_last_s) == (0.1 + dec, 0.2 + dec)
    assert out.decode_total_s == 1.5 + 10 * dec
    assert out.times == (0.1 + dec, 0.2 + dec)
    assert with_communication(None, plan, 10) is None


def test_kv_heads_replicated_t4(runs: dict) -> None:
    # T = 4 > 2 kv heads: each device holds one kv head (each head on 2 devices), so the
    # cache per device is 512 x 1/2 = 256 bytes per token, as at T = 2, not 512 / 4 = 128
    g = runs[4]
    assert g.memory.kv_per_token == 256 and g.memory.weight_bytes == 115_968
    s = g.tensor_parallel.split
    assert (s.kv_per_device, s.kv_replicas) == (1, 2)
    assert any("replicated on 2 devices" in n for n in g.notes)


@pytest.mark.parametrize(("t", "words"), [(3, "4 attention heads"), (16, "at most 8")])
def test_refused(tiny: object, t: int, words: str) -> None:
    with pytest.raises(InputError, match=words):
        generate(tiny, prompt=8, new=4, tensor_parallel=t)


def test_chip_without_a_node_link(tiny: object) -> None:
    with pytest.raises(InputError, match="intra-node link"):
        generate(tiny, prompt=8, new=4, hardware="a10", tensor_parallel=2)


@pytest.fixture(scope="module")
def llama70() -> object:
    return generate("hf:llama-3-70b", prompt=2048, new=256, batch=8, hardware="h100-sxm",
                    tensor_parallel=8)  # fmt: skip


def test_llama3_70b_t8_weights_per_device(llama70: object) -> None:
    w = llama70.tensor_parallel.weights
    assert 80 * 855_654_400 + 2 * 1_050_673_152 + 8_192 == 70_553_706_496
    assert w.replicated == 2_637_824 and w.whole_split == 141_104_775_168
    assert llama70.memory.weight_bytes == 17_640_734_720


def test_llama3_70b_t8_fits_and_largest_batch(llama70: object) -> None:
    m = llama70.memory
    # KV per token per device: 2 x 80 layers x 1 kv head x 128 x 2 bytes = 40,960; 2,304
    # tokens (144 blocks of 16): 94,371,840 per sequence
    assert m.kv_per_token == 40_960 and m.kv_sequence_bytes == 94_371_840
    assert m.capacity == 80e9 and m.fits
    # largest batch: floor((80e9 - 17,640,734,720) / (94,371,840 + activations/sequence))
    per = 94_371_840 + m.activations_per_sequence
    assert m.max_batch == int((80e9 - 17_640_734_720) // per)
    assert m.needed(m.max_batch, 2304) <= 80e9 < m.needed(m.max_batch + 1, 2304)
    assert llama70.tensor_parallel.decode.all_reduces == 161  # 2 x 80 + 1
    # a decode step's all-reduce: 8 x 8,192 x 2 = 131,072 bytes
    assert llama70.tensor_parallel.decode.all_reduce_bytes == 131_072


def test_mixtral_experts_split(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Mixtral-8x7B with 2 layers (bf16). Per layer: 8 experts x 3 x 4,096 x 14,336 =
    # 1,409,286,144 stacked expert parameters (split T ways: expert tensor parallelism),
    # q and o 4,096^2 = 16,777,216 each, k and v 4,096 x 1,024 = 4,194,304 each (41,943,040),
    # the router 4,096 x 8 = 32,768 and 2 norms of 4,096 (replicated). Embedding and lm_head
    # 32,000 x 4,096 = 131,072,000 each, final norm 4,096. Split: 2 x (1,409,286,144 +
    # 41,943,040) + 2 x 131,072,000 = 3,164,602,368 parameters = 6,329,204,736 bytes, half
    # per device at T = 2: 3,164,602,368; replicated 2 x (32,768 + 8,192) + 4,096 = 86,016
    # parameters = 172,032 bytes. Per device 3,164,774,400 bytes.
    from modelmeter.models.hf import preset_config

    config = {**preset_config("mixtral-8x7b"), "num_hidden_layers": 2}
    model = load_model(tmp_path_factory, "mixtral-2l", config)
    g = generate(model, prompt=4, new=2, batch=2, hardware="h100-sxm", tensor_parallel=2)
    w = g.tensor_parallel.weights
    assert w.whole_split == 6_329_204_736 and w.replicated == 172_032
    assert g.memory.weight_bytes == 3_164_774_400
    # the MLP's down projection is the experts' second grouped matmul: still 2 all-reduces
    # per layer, + 1 after the embedding
    assert g.tensor_parallel.decode.all_reduces == 5


def test_custom_all_reduce(tiny: object, runs: dict) -> None:
    g = generate(tiny, prompt=8, new=4, batch=2, hardware="h100-sxm", tensor_parallel=2,
                 all_reduce="custom")  # fmt: skip
    dec = g.tensor_parallel.decode
    # two devices: one-shot, 1 step of 2 us and the other's 512 bytes read, x 5; the
    # gather a ring: 2 us + 1,024 B
    assert dec.algorithm == "one-shot"
    assert dec.time_s == pytest.approx(5 * (2e-6 + 512 / NVLINK4) + 2e-6 + 1_024 / NVLINK4)
    ring = runs[2].tensor_parallel.decode.time_s
    assert g.timing.decode_first_s == pytest.approx(runs[2].timing.decode_first_s - ring
                                                    + dec.time_s, rel=1e-12)  # fmt: skip
    with pytest.raises(InputError, match="unknown all-reduce"):
        generate(tiny, prompt=8, new=4, all_reduce="tree")


def test_latent_cache_is_whole_on_every_device(tmp_path_factory: pytest.TempPathFactory) -> None:
    # DeepSeek-V3's shape, tiny (float32): 2 layers, 4 heads; multi-head latent attention
    # caches per layer per token the compressed keys and values (kv_lora_rank 16) and the
    # shared rotary key (qk_rope_head_dim 8) as one "head" each: (16 + 8) x 4 B = 96 B, x 2
    # layers = 192 B per token. Every head expands the whole latent, so a device of T = 2
    # holds all of it (vLLM's MLA cache on every tensor-parallel rank), not 192 / 2 = 96 B
    # (what a split by the 4 key/value heads gave). 6 tokens in a paged block of 16:
    # 16 x 192 = 3,072 B per sequence.
    from modelmeter.models.hf import preset_config

    config = {**preset_config("deepseek-v3"), "hidden_size": 32, "intermediate_size": 64,
              "moe_intermediate_size": 16, "num_hidden_layers": 2, "first_k_dense_replace": 1,
              "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4,
              "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "kv_lora_rank": 16,
              "q_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8,
              "v_head_dim": 8, "vocab_size": 64, "torch_dtype": "float32"}  # fmt: skip
    model = load_model(tmp_path_factory, "deepseek-tiny", config)
    one = generate(model, prompt=4, new=2, batch=1, hardware="h100-sxm")
    two = generate(model, prompt=4, new=2, batch=1, hardware="h100-sxm", tensor_parallel=2)
    assert one.memory.kv_per_token == 192 and two.memory.kv_per_token == 192
    assert two.memory.kv_sequence_bytes == 3_072
    s = two.tensor_parallel.split
    assert (s.cache_heads, str(s.cache_share)) == (1, "1")
    # an op on the cache (its update, the reads of it) is the whole op on each device; a
    # replicated K/V projection's share stays the kv heads' (ceil(4 / 2) / 4 = 1/2)
    from modelmeter.analysis.serving_parallel import device_cost
    from modelmeter.costs import Cost

    op = Cost(0, 10, 400, 96, 0)
    assert device_cost(op, "kv", s) == op
    assert device_cost(op, "kv-column", s) == Cost(0, 5, 400, 48, 0)
