"""Embedding lookups read only the gathered rows; bags add, average or compare them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modelmeter.report import Cost


def test_embedding_reads_gathered_rows_only(kit) -> None:  # noqa: ANN001
    r = kit.run(nn.Embedding(1000, 16), "2x5:int64")
    # out (2,5,16) = 160 fp32 = 640 B. Reads: indices 10*8 = 80 B + 10 rows of 16 fp32 = 640 B
    # (not the 1000*16*4 = 64000 B table) -> 720 ; weight bytes = the gathered rows, 640
    assert kit.ops(r) == {"aten.embedding": 1}
    assert r.total().cost == Cost(0, 0, 720, 640, 640)
    assert r.total().params == 16000


def test_embedding_formula(kit) -> None:  # noqa: ANN001
    w, idx = kit.t(50, 8, weight=True), kit.t(3, dtype="int32")
    # out (3,8): reads 3*4 = 12 + 24*4 = 96 -> 108 ; weight 96 ; writes 96
    c = kit.cost("embedding", {"weight": w, "indices": idx}, kit.t(3, 8))
    assert c == Cost(0, 0, 108, 96, 96)
    # a table that is not a weight (passed as an activation): no weight bytes
    c = kit.cost("embedding", {"weight": kit.t(50, 8), "indices": idx}, kit.t(3, 8))
    assert c.weight_bytes == 0 and c.bytes_read == 108


@pytest.mark.parametrize(
    ("mode", "flops"),
    [
        # 4 bags of 3 rows, D = 6: (N - B)*D = (12 - 4)*6 = 48 adds
        ("sum", 48),
        # mean: + B*D divides = 48 + 24 = 72 = N*D
        ("mean", 72),
        # max: (N - B)*D compares = 48
        ("max", 48),
    ],
)
def test_embedding_bag_modes(kit, mode: str, flops: int) -> None:  # noqa: ANN001
    r = kit.run(nn.EmbeddingBag(100, 6, mode=mode), "4x3:int64")
    c = r.total().cost
    assert c.flops == flops
    # gathered rows: 12 * 6 * 4 B = 288 B of weight
    assert c.weight_bytes == 288


def test_embedding_bag_per_sample_weights(kit) -> None:  # noqa: ANN001
    bag = nn.EmbeddingBag(100, 6, mode="sum")

    def f(idx: torch.Tensor, psw: torch.Tensor) -> torch.Tensor:
        return bag(idx, per_sample_weights=psw)

    r = kit.run(f, "4x3:int64", "4x3")
    # sum (12 - 4)*6 = 48 adds + 12*6 = 72 multiplies by the per-sample weights = 120
    assert r.total().cost.flops == 120


def test_embedding_bag_formula_bytes(kit) -> None:  # noqa: ANN001
    w = kit.t(100, 6, weight=True)
    idx, offsets = kit.t(12, dtype="int64"), kit.t(4, dtype="int64")
    outs = (kit.t(4, 6), kit.t(12, dtype="int64"), kit.t(4, dtype="int64"),
            kit.t(4, dtype="int64"))
    args = {"weight": w, "indices": idx, "offsets": offsets, "mode": 0}
    c = kit.cost("_embedding_bag", args, outs)
    # sum: (12 - 4)*6 = 48 ; reads idx 96 + offsets 32 + 12 rows * 24 B = 288 -> 416 ;
    # writes only the (4, 6) output 96 (the CPU sum kernel fills no bookkeeping) ; weight 288
    assert c == Cost(0, 48, 416, 96, 288)
    # mean: writes out 96 + offset2bag 12*8 = 96 + bag_size 4*8 = 32 -> 224
    args["mode"] = 1
    assert kit.cost("_embedding_bag", args, outs).bytes_written == 224
    # max: + the (4, 6) int64 argmax indices 192 -> 416
    args["mode"] = 2
    assert kit.cost("_embedding_bag", args, outs).bytes_written == 416


def test_embedding_dense_backward_formula(kit) -> None:  # noqa: ANN001
    grad, idx = kit.t(2, 5, 16), kit.t(2, 5, dtype="int64")
    args = {"grad_output": grad, "indices": idx, "num_weights": 1000}
    # 10 gradient rows of 16 added into the table gradient: 160 adds
    assert kit.cost("embedding_dense_backward", args, kit.t(1000, 16)).flops == 160


# Found in review: embeddings: embedding_bag's bytes agree between meta and real runs, max_norm
# renormalisation, and the embedding_bag gradient.


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
