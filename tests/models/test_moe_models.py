"""Mixture-of-experts models from transformers: the grouped matmul counted (no unsupported
op), float32 on meta, total and active parameters of the shipped MoE presets derived by hand
from their configs, and the experts' MACs against the same model's eager per-expert loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.experts import active_parameters, expert_layers  # noqa: E402
from modelmeter.models.hf import preset_config  # noqa: E402


def _reduced(name: str, layers: int, tmp_path: Path) -> str:
    """A copy of a preset's config with fewer layers, as an ``hf:`` path."""
    cfg = dict(preset_config(name), num_hidden_layers=layers)
    path = tmp_path / f"{name}-{layers}.json"
    path.write_text(json.dumps(cfg))
    return f"hf:{path}"


def test_mixtral_8x7b_total_and_active_parameters() -> None:
    r = modelmeter.analyze("hf:mixtral-8x7b", kwargs={"input_ids": "1x8:int64"})
    assert r.unsupported == {}
    # config: hidden 4096, intermediate 14336, 32 layers, 32 heads of 128, 8 kv heads,
    # 8 experts top-2, vocab 32000.
    # attention per layer: q,o 2*4096^2 = 33,554,432, k,v 2*4096*(8*128) = 8,388,608
    #   -> 41,943,040; router 8*4096 = 32,768; 2 norms 8,192
    # one expert: w1,w3 (gate/up) 2*4096*14336 + w2 (down) 14336*4096 = 176,160,768;
    #   8 experts = 1,409,286,144
    # layer: 41,943,040 + 32,768 + 8,192 + 1,409,286,144 = 1,451,270,144 x 32 =
    #   46,440,644,608; embed + lm_head 2*32000*4096 = 262,144,000; final norm 4,096
    # total: 46,440,644,608 + 262,144,000 + 4,096 = 46,702,792,704
    assert r.total().params == 46_702_792_704
    # active per token: every non-expert parameter (46,702,792,704 - 32*1,409,286,144 =
    # 1,605,636,096) + 2 experts per layer (32 * 2 * 176,160,768 = 11,274,289,152)
    # = 12,879,925,248
    assert active_parameters(r) == 12_879_925_248
    layers = expert_layers(r)
    assert len(layers) == 32 and {(x.experts, x.top_k) for x in layers} == {(8, 2)}
    # MACs at 8 tokens, per layer: q,k,v,o 8*41,943,040 = 335,544,320; QK and AV
    # 2*32*8*8*128 = 524,288; router 8*4096*8 = 262,144; experts: 16 token-expert rows
    # through 176,160,768 weights = 2,818,572,288 -> 3,154,903,040 x 32 = 100,956,897,280;
    # lm_head 8*4096*32000 = 1,048,576,000 -> 102,005,473,280
    assert r.total().macs == 102_005_473_280


def test_qwen3_30b_a3b(tmp_path: Path) -> None:
    r = modelmeter.analyze(_reduced("qwen3-30b-a3b", 2, tmp_path), kwargs={"input_ids": "1x4:int64"})
    assert r.unsupported == {}
    # config: hidden 2048, 48 layers, 32 heads and 4 kv heads of 128, 128 experts top-8 of
    # moe_intermediate 768, vocab 151936.
    # attention per layer: q 2048*4096 = 8,388,608, k,v 2*2048*512 = 2,097,152, o 4096*2048
    #   = 8,388,608, q/k norms 2*128 -> 18,874,624; router 128*2048 = 262,144; 2 norms 4,096
    # one expert 3*2048*768 = 4,718,592; 128 experts = 603,979,776
    # layer: 18,874,624 + 262,144 + 4,096 + 603,979,776 = 623,120,640
    # embed + lm_head 2*151936*2048 = 622,329,856; final norm 2,048
    # 2 layers: 1,246,241,280 + 622,331,904 = 1,868,573,184
    assert r.total().params == 1_868_573_184
    per_layer = 623_120_640
    # 48 layers: 48*623,120,640 + 622,331,904 = 30,532,122,624
    assert r.total().params + 46 * per_layer == 30_532_122_624
    # active: 8 of 128 experts: 603,979,776 - 8*4,718,592 = 566,231,040 idle per layer;
    # 30,532,122,624 - 48*566,231,040 = 3,353,032,704
    idle = r.total().params - active_parameters(r)
    assert idle == 2 * 566_231_040
    assert 30_532_122_624 - 48 * idle // 2 == 3_353_032_704


def test_deepseek_v3_shape(tmp_path: Path) -> None:
    # 3 dense layers then MoE layers: the 4- and 5-layer copies give one MoE layer's count
    r4 = modelmeter.analyze(_reduced("deepseek-v3", 4, tmp_path), kwargs={"input_ids": "1x4:int64"})
    r5 = modelmeter.analyze(_reduced("deepseek-v3", 5, tmp_path), kwargs={"input_ids": "1x4:int64"})
    assert r5.unsupported == {}
    # MLA attention per layer: q_a 7168*1536 = 11,010,048, q_a norm 1,536, q_b 1536*128*192
    # = 37,748,736, kv_a 7168*(512+64) = 4,128,768, kv_a norm 512, kv_b 512*128*(128+128) =
    # 16,777,216, o 128*128*7168 = 117,440,512 -> 187,107,328; 2 norms 14,336
    # dense MLP 3*7168*18432 = 396,361,728 -> dense layer 583,483,392
    # MoE: 256 routed experts of 3*7168*2048 = 44,040,192 -> 11,274,289,152, 1 shared
    #   44,040,192, router 256*7168 = 1,835,008 -> MoE layer 11,507,286,016
    # embed + lm_head 2*129280*7168 = 1,853,358,080; final norm 7,168
    dense, moe, ends = 583_483_392, 11_507_286_016, 1_853_365_248
    assert r4.total().params == 3 * dense + moe + ends
    assert r5.total().params - r4.total().params == moe
    # 61 layers: 3*583,483,392 + 58*11,507,286,016 + 1,853,365,248 = 671,026,404,352
    assert 3 * dense + 58 * moe + ends == 671_026_404_352
    # active: 8 of 256 routed experts: 248*44,040,192 = 10,921,967,616 idle per MoE layer;
    # the shared expert always active: 671,026,404,352 - 58*10,921,967,616 = 37,552,282,624
    assert r5.total().params - active_parameters(r5) == 2 * 10_921_967_616
    assert 671_026_404_352 - 58 * 10_921_967_616 == 37_552_282_624
    assert [x.experts for x in expert_layers(r5)] == [256, 256]


SMALL = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 100,
}


def _small(model_type: str) -> torch.nn.Module:
    """A small float32 MoE model with random weights on the CPU (grouped_mm experts)."""
    config = tf.AutoConfig.for_model(model_type, **SMALL)
    torch.manual_seed(0)
    return tf.AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("model_type", ["mixtral", "qwen2_moe"])
def test_grouped_experts_equal_the_eager_loop(model_type: str) -> None:
    model = _small(model_type)
    ids = torch.randint(0, 100, (1, 16))

    def experts_macs(r: modelmeter.Report) -> int:
        return sum(r[x.name].macs for x in expert_layers(r))

    grouped = modelmeter.analyze(model, kwargs={"input_ids": ids}, mode="real", convention="2mac")
    meta = modelmeter.analyze(model, kwargs={"input_ids": "1x16:int64"}, mode="meta")
    model.set_experts_implementation("eager")  # the per-expert loop (mm on each one's rows)
    eager = modelmeter.analyze(model, kwargs={"input_ids": ids}, mode="real", convention="2mac")
    with FlopCounterMode(display=False) as fcm, torch.no_grad():
        model(input_ids=ids)
    assert grouped.unsupported == meta.unsupported == eager.unsupported == {}
    assert "aten._grouped_mm" in grouped.by_operator() and "aten._grouped_mm" in meta.by_operator()
    assert "aten._grouped_mm" not in eager.by_operator()
    # 16 tokens x top-2 = 32 token-expert rows per layer, whichever experts they go to:
    # gate/up 32*64*(2*I) + down 32*I*64 with I the experts' intermediate size
    inter = SMALL["intermediate_size" if model_type == "mixtral" else "moe_intermediate_size"]
    per_layer = 32 * 64 * 2 * inter + 32 * inter * 64
    assert experts_macs(grouped) == experts_macs(meta) == 2 * per_layer
    # the eager loop's experts are plain mm calls on each expert's rows (not recognised as
    # an expert layer by the grouped-matmul rule): the model totals agree instead
    assert eager.total().macs == grouped.total().macs == meta.total().macs
    # FlopCounterMode counts the loop's mm per experts module (it counts nothing for
    # _grouped_mm, nor the CPU's fused attention op): 2 FLOPs per MAC, as counted here
    counts = fcm.get_flop_counts()
    for x in expert_layers(meta):
        assert sum(counts[f"{type(model).__name__}.{x.name}"].values()) == 2 * per_layer
    assert active_parameters(meta) == active_parameters(grouped)


def test_float32_moe_on_meta() -> None:
    # transformers' grouped_mm experts in float32: the meta kernel takes only bfloat16, the
    # tracer takes the output's shape from it on bfloat16 stand-ins; bytes stay float32
    config = tf.AutoConfig.for_model("mixtral", **SMALL)
    with torch.device("meta"):
        model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    r = modelmeter.analyze(model, kwargs={"input_ids": "1x16:int64"})
    assert r.unsupported == {}
    op = r.by_operator()["aten._grouped_mm"]
    # 2 layers x (gate/up + down); 4 experts' weights read whole in float32 per call:
    # gate/up 4*64*256 + down 4*128*64 floats = 98,304 floats per layer = 393,216 bytes
    assert op.calls == 4
    assert op.cost.weight_bytes == 2 * 393_216


def test_backward_of_the_experts() -> None:
    # a training step: the grouped matmul's backward is two grouped matmuls per forward one
    # (input gradient 2D x 3D with the weights transposed, weight gradient 2D x 2D with the
    # rows split per expert), each of the forward's MACs: 2 x (32*64*256 + 32*128*64) per
    # layer at 16 tokens top-2 (32 rows) = 2 x 786,432, x 2 layers = 3,145,728
    config = tf.AutoConfig.for_model("mixtral", **SMALL)
    with torch.device("meta"):
        model = tf.AutoModelForCausalLM.from_config(config).eval()
    r = modelmeter.analyze(model, kwargs={"input_ids": "1x16:int64"}, backward=True)
    assert r.unsupported == {}
    assert r.by_operator("forward")["aten._grouped_mm"].cost.macs == 2 * 786_432
    assert r.by_operator("backward")["aten._grouped_mm"].cost.macs == 3_145_728
