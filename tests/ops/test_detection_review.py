"""Review of unique: unique_dim sorts slices, not elements."""

from __future__ import annotations

import torch


def test_unique_dim_sorts_slices(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: torch.unique(x, dim=0), "8x3", mode="real")
    # 8 rows of 3: sort 8*ceil(log2 8) = 24 row compares + 7 neighbour compares = 31, each
    # over 3 elements -> 93 (elementwise unique of 24 values would be 24*5 + 23 = 143)
    assert r.by_operator()["aten.unique_dim"].cost.flops == 93
    # flat unique of the 24 values: 24*ceil(log2 24) = 120 + 23 = 143
    assert kit.run(torch.unique, "8x3", mode="real").total().cost.flops == 143
