"""Mixture-of-experts training under tensor and expert parallelism: the stacked expert weights
split t·e ways, the routers replicated, ZeRO over d and d/e, the token all-to-alls and their
time, the refusals; figures derived by hand from each model's config beside each assertion."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from parallel_models import Tiny  # noqa: E402

from modelmeter.analysis.collectives import fabric  # noqa: E402
from modelmeter.analysis.expert_parallel import device_states, expert_group  # noqa: E402
from modelmeter.analysis.parallel import check_plan, layout  # noqa: E402
from modelmeter.errors import InputError  # noqa: E402
from modelmeter.inputs import InputRequest  # noqa: E402
from modelmeter.usecases.train import train, train_devices  # noqa: E402

# Mixtral, 2 layers, 4 experts top-2 of intermediate 32, hidden 16, 4 heads (2 kv) of 4,
# vocabulary 10. Parameters (fp32, 4 B each):
#   embedding 10 x 16 = 160; lm_head 16 -> 10 = 160 (untied)
#   per layer: q 16x16 = 256, k 8x16 = 128, v 128, o 256: attention 768 (split)
#              router 4 x 16 = 64 (MixtralTopKRouter: replicated)
#              experts gate_up 4 x 64 x 16 = 4,096, down 4 x 16 x 32 = 2,048: 6,144
#              2 RMSNorms 2 x 16 = 32
#   final norm 16
#   total 160 + 160 + 2 x (768 + 64 + 6,144 + 32) + 16 = 14,352
#   expert 2 x 6,144 = 12,288; split 160 + 160 + 2 x 768 = 1,856; replicated 2 x 96 + 16 = 208
TINY = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4,
        "num_experts_per_tok": 2, "vocab_size": 10, "max_position_embeddings": 64}  # fmt: skip
TOKENS = InputRequest.from_api(None, kwargs={"input_ids": "1x4:int64"})


def _mixtral() -> torch.nn.Module:
    config = tf.AutoConfig.for_model("mixtral", **TINY)
    with torch.device("meta"):
        return tf.MixtralForCausalLM(config)


@pytest.fixture(scope="module")
def mixtral() -> torch.nn.Module:
    return _mixtral()


def test_the_layout_of_a_tiny_mixtral(mixtral: torch.nn.Module) -> None:
    r = train(mixtral, TOKENS, devices=2, tensor=2)
    lay = layout(r.report, 4, 4, 2)
    assert (lay.params, lay.expert, lay.split) == (14_352, 12_288, 1_856)
    assert lay.moe == ((4, 2), (4, 2))  # 4 experts, 2 per token, in each of the 2 layers


def test_tensor_parallel_splits_the_stacked_experts(mixtral: torch.nn.Module) -> None:
    r = train(mixtral, TOKENS, devices=8, tensor=2)
    # t = 2, e = 1: experts 12,288 / 2 = 6,144, split 1,856 / 2 = 928, replicated 208:
    # 7,280 parameters x 4 B = 29,120 B of weights and as many of gradients
    assert (r.sharded.weights, r.sharded.gradients) == (29_120, 29_120)
    # AdamW: 2 fp32 states, 8 B per parameter: 7,280 x 8 = 58,240 (no ZeRO)
    assert r.sharded.optimizer == 58_240
    # the expert states of one device: 6,144 x (4 + 4 + 8) = 98,304 over d = 8 / 2 = 4
    assert (r.sharded.expert_data, r.sharded.expert_states) == (4, 98_304)
    ar = {c.what: c for c in r.communication.collectives}
    # e = 1: one all-reduce of all the device's gradients, 29,120 B over the 4 replicas,
    # 2 x 3/4 x 29,120 = 43,680 B sent; no expert rows, no all-to-all
    assert (ar["gradients"].bytes, ar["gradients"].group, ar["gradients"].sent) == (
        29_120, 4, 43_680)  # fmt: skip
    assert "expert gradients" not in ar
    assert not any(c.kind == "all-to-all" for c in r.communication.collectives)


def test_expert_parallel_states_and_zero_shares(mixtral: torch.nn.Module) -> None:
    # N = 8, t = 2: d = 4 replicas, e = 2: expert data-parallel groups of d/e = 2
    r = train(mixtral, TOKENS, devices=8, tensor=2, expert_parallel=2, zero=1)
    # per device: experts 12,288 / (2 x 2) = 3,072, the rest 928 + 208 = 1,136: 4,208 x 4 B
    assert (r.sharded.weights, r.sharded.gradients) == (16_832, 16_832)
    # ZeRO-1: the rest's states 1,136 x 8 = 9,088 / d = 4 -> 2,272; the experts' 3,072 x 8 =
    # 24,576 / (d/e = 2) -> 12,288: 14,560
    assert r.sharded.optimizer == 14_560
    assert r.parallel.expert == 2 and r.to_dict()["parallel"]["expert"] == 2
    z3 = train(mixtral, TOKENS, devices=8, tensor=2, expert_parallel=2, zero=3)
    # ZeRO-3: weights 4,544 / 4 + 12,288 / 2 = 1,136 + 6,144 = 7,280; gradients the same
    assert (z3.sharded.weights, z3.sharded.gradients, z3.sharded.optimizer) == (7_280, 7_280,
                                                                                14_560)  # fmt: skip
    d = z3.sharded.to_dict()
    # the expert states: 7,280 - 1,136 = 6,144 weights, 6,144 gradients, 12,288 optimizer
    assert (d["expert_data_parallel"], d["expert_states"]) == (2, 6_144 + 6_144 + 12_288)


def test_hybrid_sharding_partitions_the_expert_states_over_g_over_e(
        mixtral: torch.nn.Module) -> None:  # fmt: skip
    # 8 devices, t = 1: d = 8 replicas, e = 2, ZeRO-3 within groups of G = 4 replicas: a group
    # holds 4 / 2 = 2 copies of each expert half, so the expert states are partitioned over 2
    r = train(mixtral, TOKENS, devices=8, expert_parallel=2, zero=3, shard_group=4)
    # per device before ZeRO: experts 12,288 / 2 = 6,144, the rest 1,856 + 208 = 2,064;
    # weights 2,064 x 4 / 4 = 2,064 B + 6,144 x 4 / 2 = 12,288 B = 14,352 (gradients alike)
    assert (r.sharded.weights, r.sharded.gradients) == (14_352, 14_352)
    # optimizer: 2,064 x 8 / 4 = 4,128 + 6,144 x 8 / 2 = 24,576 = 28,704
    assert r.sharded.optimizer == 28_704
    rows = {c.what: c for c in r.communication.collectives}
    # the expert gradients (6,144 x 4 = 24,576 B): reduce-scatter within the 2 copies of a
    # group, then each 1/2 shard (12,288 B) all-reduced across the d/e / 2 = 2 groups
    assert (rows["expert gradients"].bytes, rows["expert gradients"].group) == (24_576, 2)
    shard = rows["expert gradient shard"]
    assert (shard.kind, shard.bytes, shard.group) == ("all-reduce", 12_288, 2)


def test_each_pipeline_stage_holds_its_own_layers_experts(mixtral: torch.nn.Module) -> None:
    # 4 devices, t = 1, p = 2: d = 2 replicas, e = 2. Stage 0 holds the embedding (160) and
    # layer 0 (768 + 64 + 6,144 + 32 = 7,008): 7,168; stage 1 layer 1, the final norm and the
    # head: 7,008 + 16 + 160 = 7,184. Its own experts: 6,144 on each stage, / e = 3,072.
    r = train(mixtral, TOKENS, devices=4, pipeline=2, micro_batches=2, expert_parallel=2)
    lay = layout(r.report, 4, 4, 2)
    assert lay.layer_experts == (6_144, 6_144)
    plan = check_plan(4, 1, 2, 2, lay, expert=2)
    # stage 0: 3,072 + 160 + 768 + 64 + 32 = 4,096 parameters x 4 B = 16,384 B; stage 1:
    # 3,072 + 768 + 64 + 32 + 16 + 160 = 4,112 x 4 = 16,448 B. (The model's proportion of
    # experts on each stage gave 7,184 x (6,144 + 2,064) / 14,352 = 4,108.6 on stage 1.)
    weights = [device_states(r.categories, lay, plan, 0, None, s).weights for s in (0, 1)]
    assert weights == [16_384, 16_448]
    # the expert states of stage 1: 3,072 x (4 + 4 + 8) = 49,152 B, not partitioned
    assert device_states(r.categories, lay, plan, 1, None, 1).expert_states == 49_152
    assert r.sharded.weights in weights


def test_a_device_steps_the_optimizer_on_its_own_experts_only(
        mixtral: torch.nn.Module) -> None:  # fmt: skip
    # t = 2 on 8 devices: at e = 1 a device holds 1,856 / 2 + 12,288 / 2 + 208 = 7,280 of the
    # 14,352 parameters and its optimizer phase is the step's / t; at e = 2 it holds
    # 928 + 12,288 / 4 + 208 = 4,208 and updates only those: 4,208 / 7,280 of that time.
    # The forward and backward do not change with e (uniform routing).
    from modelmeter.hardware import load_spec

    chip = load_spec("h100-sxm")
    one = train(mixtral, TOKENS, devices=8, tensor=2, hardware=chip)
    two = train(mixtral, TOKENS, devices=8, tensor=2, expert_parallel=2, hardware=chip)
    assert two.time.phases["optimizer"] == pytest.approx(
        one.time.phases["optimizer"] * 4_208 / 7_280, rel=1e-12)  # fmt: skip
    assert two.time.phases["forward"] == one.time.phases["forward"]
    assert two.time.phases["backward"] == one.time.phases["backward"]


def test_the_token_all_to_alls(mixtral: torch.nn.Module) -> None:
    r = train(mixtral, TOKENS, devices=8, tensor=2, expert_parallel=2, intra="nvlink4")
    a2a = [c for c in r.communication.collectives if c.kind == "all-to-all"]
    # 4 per MoE layer per micro-batch: dispatch and combine, their gradients
    assert [(c.what, c.phase) for c in a2a] == [
        ("token dispatch", "forward"), ("token combine", "forward"),
        ("dispatch gradients", "backward"), ("combine gradients", "backward")]  # fmt: skip
    for c in a2a:
        # tokens x k x h x 4 B = 4 x 2 x 16 x 4 = 512 B per device, over the e = 2 devices;
        # 2 MoE layers x 1 micro-batch = 2 per step; each sends (2-1)/2 x 512 = 256 B
        assert (c.bytes, c.group, c.count, c.sent) == (512, 2, 2, 512)
        # e x t = 4 devices in a node of 8: NVLink 4, 1 step of 2 us + 256 B / 450e9 B/s
        assert c.link == "nvlink4" and c.algorithm == "pairwise"
        assert c.time_s == pytest.approx(2 * (2e-6 + 256 / 450e9), rel=1e-12)
    ex = {c.what: c for c in r.communication.collectives}["expert gradients"]
    # the expert gradients 3,072 x 4 = 12,288 B over d/e = 2: 2 x 1/2 x 12,288 sent
    assert (ex.bytes, ex.group, ex.sent) == (12_288, 2, 12_288)
    sp = train(mixtral, TOKENS, devices=8, tensor=2, expert_parallel=2, sequence_parallel=True,
               gpus_per_node=2, intra="nvlink4", inter="ib-ndr")  # fmt: skip
    c = next(c for c in sp.communication.collectives if c.kind == "all-to-all")
    # sequence parallel: a device dispatches its 4 / 2 tokens: 512 / 2 = 256 B; e x t = 4
    # devices over nodes of 2: the NIC (merged link), 1 step of 5 us + 128 B / 50e9 B/s
    assert (c.bytes, c.sent, c.link) == (256, 256, "nvlink4+ib-ndr")
    assert c.time_s == pytest.approx(2 * (5e-6 + 128 / 50e9), rel=1e-12)


def test_an_all_to_all_is_a_pairwise_exchange() -> None:
    # 8 MB over 8 devices in a node: 7 messages of 1 MB, 7 x 2 us + 7e6 / 450e9 s
    one = fabric("nvlink4", "ib-ndr", 8).price("all-to-all", 8 * 10**6, 8)
    assert (one.sent, one.stages[0].steps, one.algorithm) == (7e6, 7, "pairwise")
    assert one.time_s == pytest.approx(7 * 2e-6 + 7e6 / 450e9, rel=1e-12)  # 29.56 us
    # 16 devices over 2 nodes: the slowest hop, 15 x 5 us + 15/16 x 8e6 / 50e9
    two = fabric("nvlink4", "ib-ndr", 8).price("all-to-all", 8 * 10**6, 16)
    assert two.time_s == pytest.approx(15 * 5e-6 + 7.5e6 / 50e9, rel=1e-12)  # 225 us


def test_the_router_stays_whole_and_the_experts_form_a_column_row_pair(
        mixtral: torch.nn.Module) -> None:  # fmt: skip
    r = train(mixtral, TOKENS, devices=2, tensor=2)
    ops = {o.seq: (o.op, n.name) for n in r.report.modules() for o in n.ops
           if o.phase == "forward"}  # fmt: skip
    region: dict[tuple[str, str], set[bool]] = {}
    for born, _, inside in r.memory.saved_storages:
        if born in ops and ".mlp." in ops[born][1]:
            region.setdefault(ops[born], set()).add(inside)
    gate = "model.layers.0.mlp.gate"
    experts = "model.layers.0.mlp.experts"
    # the router's logits (mm), probabilities (softmax) and top-k: whole on every device
    assert region[("aten.mm", gate)] == region[("aten._softmax", gate)] == {False}
    assert region[("aten.topk", gate)] == {False}
    # gate/up: column-parallel (split), SiLU and the product split, down: row-parallel (whole);
    # the token permutation (index of the hidden states) whole
    grouped = [k for k in region if k == ("aten._grouped_mm", experts)]
    assert grouped and region[("aten.silu", experts + ".act_fn")] == {True}
    assert region[("aten._grouped_mm", experts)] == {True, False}  # gate/up split, down whole
    assert region[("aten.index", experts)] == {False}
    split = sum(n for born, n, inside in r.memory.saved_storages
                if inside and born in ops and ops[born][1].startswith(experts))  # fmt: skip
    # the experts' split activations per layer: 4 tokens x k 2 = 8 rows x (gate/up 64 + SiLU
    # 32 + product 32) x 4 B = 4,096 B, 1/t of them on each device
    assert split == 4_096


def test_qwen2_moe_replicates_its_gates_and_splits_its_shared_expert() -> None:
    config = tf.AutoConfig.for_model(
        "qwen2_moe", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, vocab_size=10, max_position_embeddings=64,
        num_experts=4, num_experts_per_tok=2, moe_intermediate_size=8,
        shared_expert_intermediate_size=16)  # fmt: skip
    with torch.device("meta"):
        model = tf.AutoModelForCausalLM.from_config(config)
    r = train(model, TOKENS, devices=2, tensor=2)
    lay = layout(r.report, 4, 4, 4)
    # per layer: experts gate_up 4 x 16 x 16 = 1,024 + down 4 x 16 x 8 = 512 = 1,536;
    # split: q, k, v 3 x (256 + 16 bias) = 816, o 256, the shared expert's gate, up, down
    # 3 x 16 x 16 = 768: 1,840; replicated: router 4 x 16 = 64, shared_expert_gate (a Linear
    # 1 x 16) 16, 2 norms 32
    # whole model: expert 2 x 1,536 = 3,072; split 160 + 160 + 2 x 1,840 = 4,000
    assert (lay.expert, lay.split) == (3_072, 4_000)
    # replicated: 2 x (64 + 16 + 32) + final norm 16 = 240; in all 3,072 + 4,000 + 240
    assert lay.params == 7_312


def test_bad_expert_plans_are_refused(mixtral: torch.nn.Module) -> None:
    with pytest.raises(InputError, match="does not divide the 1 data-parallel replicas"):
        train(mixtral, TOKENS, devices=2, tensor=2, expert_parallel=2)  # before the trace
    with pytest.raises(InputError, match="does not divide the model's 4 experts per layer"):
        train(mixtral, TOKENS, devices=8, expert_parallel=8)
    with pytest.raises(InputError, match="needs a mixture-of-experts model"):
        train(Tiny(), torch.zeros(2, 4, dtype=torch.long), devices=4, expert_parallel=2)
    with pytest.raises(InputError, match="expert parallel degree must be a whole number"):
        train(mixtral, TOKENS, devices=8, expert_parallel=0)
    with pytest.raises(InputError, match="shard group 3 and expert parallel degree 2"):
        train(mixtral, TOKENS, devices=12, expert_parallel=2, zero=3, shard_group=3)
    # a shard group of 4 replicas holds 2 copies of each of e = 2 experts' halves: 4 / 2 = 2;
    # one of 2 replicas (= e) one copy: no partition (1); none: over all
    assert (expert_group(4, 2), expert_group(2, 4), expert_group(None, 2)) == (2, 1, None)


def test_a_sweep_keeps_the_counts_whose_replicas_e_divides(mixtral: torch.nn.Module) -> None:
    sweep = train_devices(mixtral, TOKENS, counts=(1, 2, 4, 8, 16), tensor=2,
                          expert_parallel=2)  # fmt: skip
    # t = 2, e = 2: n / 2 replicas must be even: 4, 8, 16
    assert [p.devices for p in sweep.points] == [4, 8, 16]
    assert sweep.to_dict()["expert_parallel"] == 2
    # at 16 devices: 8 replicas, experts over 8 / 2 = 4: weights 4,208 x 4 B, as at 8
    assert sweep.points[-1].memory["weights"] == 16_832


def test_mixtral_8x7b_by_hand() -> None:
    # Mixtral-8x7B's config: hidden 4,096, intermediate 14,336, 32 layers, 8 experts top-2,
    # 32 heads, 8 key/value heads of 128, vocabulary 32,000, untied head. Parameters:
    #   experts  32 x 8 x 3 x 4,096 x 14,336                    = 45,097,156,608
    #   attention 32 x (2 x 4,096^2 + 2 x 4,096 x 1,024)         =  1,342,177,280
    #   embedding and head 2 x 32,000 x 4,096                    =    262,144,000
    #   split (attention, embedding, head)                       =  1,604,321,280
    #   routers 32 x 8 x 4,096 = 1,048,576; norms 65 x 4,096 = 266,240: replicated 1,314,816
    #   total                                                    = 46,702,792,704
    r = train("hf:mixtral-8x7b", InputRequest.from_api(None, kwargs={"input_ids": "1x16"}),
              precision="bf16-mixed", devices=64, tensor=8, zero=1)  # fmt: skip
    lay = layout(r.report, 32, 2, 8)
    assert (lay.params, lay.expert, lay.split) == (46_702_792_704, 45_097_156_608,
                                                   1_604_321_280)  # fmt: skip
    # t = 8: 45,097,156,608 / 8 = 5,637,144,576 + 1,604,321,280 / 8 = 200,540,160 + 1,314,816
    # = 5,838,999,552 parameters x 2 B (bf16) = 11,677,999,104 B (it was 90.60 GB: the
    # experts were not split)
    assert r.sharded.weights == r.sharded.gradients == 11_677_999_104
    # ZeRO-1 over d = 8: 12 B per parameter (fp32 master, two states): (5,637,144,576 +
    # 201,854,976) x 12 / 8 = 8,455,716,864 + 302,782,464 = 8,758,499,328
    assert r.sharded.optimizer == 8_758_499_328
    ep = train("hf:mixtral-8x7b", InputRequest.from_api(None, kwargs={"input_ids": "1x16"}),
               precision="bf16-mixed", devices=64, tensor=8, zero=1, expert_parallel=8)  # fmt: skip
    # e = 8: experts 45,097,156,608 / 64 = 704,643,072 + the rest 201,854,976 = 906,498,048
    # x 2 B = 1,812,996,096; the optimizer: the experts' 704,643,072 x 12 over d/e = 1, the
    # rest's over 8: 8,455,716,864 + 302,782,464, the same 8,758,499,328
    assert ep.sharded.weights == 1_812_996_096
    assert ep.sharded.optimizer == 8_758_499_328
    a2a = next(c for c in ep.communication.collectives if c.kind == "all-to-all")
    # 16 tokens x k 2 x 4,096 x 2 B = 262,144 B; 32 MoE layers x 1 micro-batch per step
    assert (a2a.bytes, a2a.count, a2a.group) == (262_144, 32, 8)
