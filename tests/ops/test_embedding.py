"""Embedding lookups read only the gathered rows; bags add, average or compare them."""

from __future__ import annotations

import pytest
import torch
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
