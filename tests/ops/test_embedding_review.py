"""Review of embeddings: embedding_bag's bytes agree between meta and real runs, max_norm
renormalisation, and the embedding_bag gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


@pytest.mark.parametrize(
    ("mode", "written"),
    [
        # (2, 4) fp32 output = 32 B only (the CPU sum kernel fills no bookkeeping)
        ("sum", 32),
        # + offset2bag 6 int64 = 48 + bag_size 2 int64 = 16 -> 96
        ("mean", 96),
        # + the (2, 4) int64 argmax indices 64 -> 160
        ("max", 160),
    ],
)
def test_embedding_bag_bytes_agree_between_meta_and_real(kit, mode: str, written: int) -> None:  # noqa: ANN001
    bag = nn.EmbeddingBag(10, 4, mode=mode)
    for run in ("meta", "real"):
        for backward in (False, True):  # weights needing grad take _embedding_bag
            c = kit.run(bag, "2x3:int64", mode=run, backward=backward).by_operator("forward")
            key = "aten._embedding_bag" if backward else "aten._embedding_bag_forward_only"
            assert c[key].cost.bytes_written == written


def test_embedding_max_norm_renormalises_the_looked_up_rows(kit) -> None:  # noqa: ANN001
    emb = nn.Embedding(10, 4, max_norm=1.0)
    for run in ("meta", "real"):
        r = kit.run(emb, "2x3:int64", mode=run)
        c = r.by_operator()["aten.embedding_renorm_"].cost
        # N = 6 indices: sort 6*ceil(log2 6) = 18 + skip repeats 5 = 23 ; per row (D = 4):
        # 2-norm 2D = 8, compare 1, scale 2, D multiplies 4 = 15 -> 6*15 = 90 ; total 113
        # reads indices 48 + 6 rows * 16 B = 96 -> 144 (weight 96) ; writes the rows 96
        assert (c.flops, c.bytes_read, c.bytes_written, c.weight_bytes) == (113, 144, 96, 96)


@pytest.mark.parametrize(
    ("mode", "flops"),
    [
        # 6 looked-up rows of D = 4 receive their bag's gradient: 6*4 = 24 adds
        ("sum", 24),
        # mean also divides each by the bag size: 2*24 = 48
        ("mean", 48),
        # max: only the 2*4 = 8 gradient values go to their argmax rows: 8 adds
        ("max", 8),
    ],
)
def test_embedding_bag_backward(kit, mode: str, flops: int) -> None:  # noqa: ANN001
    bag = nn.EmbeddingBag(10, 4, mode=mode)
    for run in ("meta", "real"):
        r = kit.run(bag, "2x3:int64", mode=run, backward=True)
        c = r.by_operator("backward")["aten._embedding_bag_backward"].cost
        assert c.flops == flops
        # writes the (10, 4) table gradient: 160 B
        assert c.bytes_written == 160


def test_embedding_bag_per_sample_weights_backward(kit) -> None:  # noqa: ANN001
    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(10, 4))

        def forward(self, idx: torch.Tensor, psw: torch.Tensor) -> torch.Tensor:
            return F.embedding_bag(idx, self.w, mode="sum", per_sample_weights=psw)

    r = kit.run(Bag(), "2x3:int64", "2x3", mode="real", backward=True)
    # 6 rows * 4: adds 24 + multiplies by the per-sample weights 24 = 48
    assert r.by_operator("backward")["aten._embedding_bag_backward"].cost.flops == 48
