"""Pipeline stages: the model outside the repeated layers placed by where it runs (the
embedding with the first stage, the head with the last), and the device's peak taken stage by
stage (its own model states, activations in flight and gathered units), not as a sum of each
part's worst stage."""

from __future__ import annotations

import pytest
from parallel_models import Tiny
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from modelmeter.analysis.device_peak import stage_gathered
from modelmeter.analysis.parallel import TIED, check_plan, layout, stage_params
from modelmeter.hardware import load_spec
from modelmeter.hardware.links import link
from modelmeter.render.training import render_training
from modelmeter.usecases.train import train


def _train(model: nn.Module, **kw):  # noqa: ANN003, ANN202
    return train(model, "2x16:int64", optimizer="sgd", **kw)


def BigEmbedding() -> Tiny:  # noqa: N802
    """Tiny with a 1,000 x 8 embedding (8,000 parameters): 4 blocks (4 x 80), head 8 -> 100
    (800)."""
    return Tiny(vocab=1000)


def test_the_embedding_on_the_first_stage_the_head_on_the_last() -> None:
    r = _train(Tiny())
    lay = layout(r.report, 4, 4)
    # the embedding (800) runs before the first layer, the head (800) after the last
    assert lay.rest_places == (800, 800)
    # p = 2: 800 + 2 x 80 = 960 and 2 x 80 + 800 = 960
    assert stage_params(lay, check_plan(2, 1, 2, 4, lay)) == [960, 960]
    # p = 4, one layer each: 800 + 80 = 880, 80, 80, 80 + 800 = 880
    assert stage_params(lay, check_plan(4, 1, 4, 4, lay)) == [880, 80, 80, 880]
    # interleaved, p = 2 x v = 2: chunks of one layer, chunk c on stage c mod 2: stage 0
    # layers 0 and 2 + the embedding, stage 1 layers 1 and 3 + the head: 960 each
    assert stage_params(lay, check_plan(2, 1, 2, 4, lay, virtual=2)) == [960, 960]


def test_the_worst_stage_of_a_tiny_pipeline() -> None:
    # one micro-batch's saved bytes (fp32, 2 x 16 tokens): 1,024 by the embedding, 2,304 in
    # each layer, 12,800 after the last (the head's 2 x 16 x 100 x 4 B logits)
    # p = 2, 1F1B, m = 4: stage 0 holds min(2, 4) = 2 micro-batches of 1,024 + 2 x 2,304 =
    # 5,632 (11,264), stage 1 one of 2 x 2,304 + 12,800 = 17,408. Both stages hold 960
    # parameters (weights + momentum: 960 x 4 x 2 = 7,680 B), so the larger activations (and
    # the transient, which scales as one micro-batch's bytes) make stage 1 the worst
    r = _train(Tiny(), devices=2, pipeline=2, micro_batches=4)
    a, p = r.device_activations, r.device_peak
    assert (p.stage, a.stage, a.held, a.in_flight, p.states) == (1, 1, 17_408, 1.0, 7_680)
    assert r.to_dict()["memory"]["per_device_peak"]["stage"] == 1
    # p = 4: stages 0 and 3 hold 880 parameters (7,040 B), stage 0 4 micro-batches of 1,024 +
    # 2,304 = 3,328 (13,312), stage 3 one of 2,304 + 12,800 = 15,104: stage 3
    r = _train(Tiny(), devices=4, pipeline=4, micro_batches=4)
    a, p = r.device_activations, r.device_peak
    assert (p.stage, a.stage, a.held, p.states) == (3, 3, 15_104, 7_040)
    assert (r.sharded.weights, r.sharded.optimizer) == (880 * 4, 880 * 4)


def test_the_peak_is_one_stage_s_total_not_a_sum_of_maxima() -> None:
    # p = 2, m = 1: stage 0 holds the embedding (8,000) and 2 layers: 8,160 parameters, its
    # activations one micro-batch of 5,632; stage 1 2 layers and the head: 960 parameters, its
    # activations 17,408 (the most). Stage 0's states alone (8,160 x 4 B x 2 = 65,280 of
    # weights and momentum) outweigh all stage 1 holds; the device reported is stage 0, with
    # stage 0's activations, not stage 1's
    r = _train(BigEmbedding(), devices=2, pipeline=2, micro_batches=1)
    a, p = r.device_activations, r.device_peak
    assert (p.stage, a.stage, a.held, p.states) == (0, 0, 5_632, 65_280)
    assert r.sharded.weights == 8_160 * 4
    # the parts add up to the peak: states + gradients then held + the rest
    assert p.bytes == p.states + p.gradients + p.gathered + p.other
    assert p.other < 17_408 + 65_280  # not stage 1's activations on stage 0's states


def test_a_tied_head_holds_a_copy_of_the_embedding_on_the_last_stage() -> None:
    cfg = GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=500, n_positions=64,
                     bos_token_id=0, eos_token_id=0)  # fmt: skip
    r = _train(GPT2LMHeadModel(cfg))
    lay = layout(r.report, 4, 4)
    # before the layers wte 500 x 32 = 16,000 and wpe 64 x 32 = 2,048; after them ln_f 2 x 32
    # = 64; lm_head shares wte's weight: the last stage keeps a copy of its 16,000
    assert (lay.rest_places, lay.tied) == ((18_048, 64), 16_000)
    # a layer: ln_1 64 + c_attn 32 x 96 + 96 = 3,168 + c_proj 32 x 32 + 32 = 1,056 + ln_2 64
    # + c_fc 32 x 128 + 128 = 4,224 + c_proj 128 x 32 + 32 = 4,128: 12,704. p = 2: stage 0
    # 18,048 + 2 x 12,704 = 43,456; stage 1 2 x 12,704 + 64 + 16,000 = 41,472
    assert stage_params(lay, check_plan(2, 1, 2, 4, lay)) == [43_456, 41_472]
    # ZeRO-3 over 2 replicas of 2 stages: the last stage gathers its layers and the rest
    # unit of ln_f and the copy: 64 + 16,000 = 16,064 parameters, the largest unit
    gs = stage_gathered(r.report, r.categories, pipeline=2, rest_places=lay.rest_places,
                        tied=lay.tied)  # fmt: skip
    # fp32: forward 16,064 x 4 + 12,704 x 4 = 115,072 B
    assert (gs[1].units[0], gs[1].forward) == ("(outside the layers)", 115_072)


def _tied_gpt2() -> GPT2LMHeadModel:
    cfg = GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=500, n_positions=64,
                     bos_token_id=0, eos_token_id=0)  # fmt: skip
    return GPT2LMHeadModel(cfg)


def test_the_first_and_last_stage_all_reduce_the_tied_embedding_gradient() -> None:
    h100, nv = load_spec("h100-sxm"), link("nvlink4")
    for t in (1, 2):
        r = _train(_tied_gpt2(), devices=2 * t, tensor=t, pipeline=2, micro_batches=4,
                   hardware=h100)  # fmt: skip
        c = r.communication
        tied = [x for x in c.collectives if x.what == TIED]
        # wte 500 x 32 = 16,000 parameters, fp32 gradients, split over t slices: S = 16,000 /
        # t x 4 B = 64,000 (t = 1), 32,000 (t = 2); a 2-device all-reduce sends 2(n-1)/n x S
        # = S, once per step, in 2(n-1) = 2 ring steps over the replica's link: t x p = 2
        # or 4 devices in a node of 8, NVLink
        s = 16_000 // t * 4
        assert [(x.kind, x.bytes, x.count, x.group, x.sent) for x in tied] == [
            ("all-reduce", s, 1, 2, s)]  # fmt: skip
        assert tied[0].link == "nvlink4"
        assert tied[0].time_s == pytest.approx(2 * nv.latency + s / nv.bandwidth)
        # in the step's communication like the others (overlap none: all of it exposed)
        assert c.time_s == pytest.approx(sum(x.time_s for x in c.collectives))
        assert r.to_dict()["communication"]["collectives"][-1]["what"] == TIED
        # a row of the table, not one of the per-layer tensor collectives (its group is 2 = t
        # at t = 2)
        text = render_training(r)
        assert "all-reduce  tied embedding gradients" in text
        per_layer = [x for x in text.splitlines() if "per layer and micro-batch" in x]
        assert len(per_layer) == (t > 1) and not any("tied" in x for x in per_layer)
    # nodes of 2 GPUs: the replica's t x p = 4 devices span 2 nodes, the first stage's device
    # on one and the last stage's on the other: the merged NVLink + InfiniBand link
    r = _train(_tied_gpt2(), devices=4, tensor=2, pipeline=2, micro_batches=4,
               hardware=h100, gpus_per_node=2, inter="ib-ndr")  # fmt: skip
    tied = [x for x in r.communication.collectives if x.what == TIED]
    assert tied[0].link == "nvlink4+ib-ndr"
    # an untied model runs none: Tiny's head has its own weight
    r = _train(Tiny(), devices=2, pipeline=2, micro_batches=4, hardware=h100)
    assert all(x.what != TIED for x in r.communication.collectives)
