"""Pipeline stages: the model outside the repeated layers placed by where it runs (the
embedding with the first stage, the head with the last), and the device's peak taken stage by
stage (its own model states, activations in flight and gathered units), not as a sum of each
part's worst stage."""

from __future__ import annotations

from parallel_models import Block, Tiny
from torch import nn

from modelmeter.analysis.parallel import check_plan, layout, stage_params
from modelmeter.usecases.train import train


def _train(model: nn.Module, **kw):  # noqa: ANN003, ANN202
    return train(model, "2x16:int64", optimizer="sgd", **kw)


class BigEmbedding(nn.Module):
    """Tiny with a 1,000 x 8 embedding (8,000 parameters): 4 blocks (4 x 80), head 8 -> 100
    (800)."""

    num_heads = 4

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(1000, 8)
        self.layers = nn.ModuleList(Block() for _ in range(4))
        self.head = nn.Linear(8, 100, bias=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        x = self.emb(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


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
