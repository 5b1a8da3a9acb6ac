"""Review of data movement: fold (col2im) with padding, torch.equal, and the padding
gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from modelmeter.report import Cost


def test_fold_with_padding_drops_the_padded_column_elements(kit) -> None:  # noqa: ANN001
    # fold (1, 2*9, 64) into (8, 8), 3x3 kernel, padding 1, stride 1. Along each axis the
    # 8 blocks x 3 offsets land on -1..6, 0..7, 1..8: 7 + 8 + 7 = 22 inside, all 8 positions
    # hit. Per channel 22*22 = 484 values into 64 outputs: 484 - 64 = 420 adds; 2 channels:
    # 840. (The padded elements are dropped, not added: not 2*9*64 - 2*64 = 1024.)
    r = kit.run(lambda x: F.fold(x, (8, 8), 3, padding=1), "1x18x64")
    assert r.total().cost.flops == 840
    # stride 3 > kernel 2 on 9x9: blocks do not overlap, 6 of 9 positions per axis are hit:
    # 36 values into 36 positions: 0 adds
    r = kit.run(lambda x: F.fold(x, (9, 9), 2, stride=3), "1x8x9")
    assert r.total().cost.flops == 0
    # dilation 2, padding 1 on 8x8, 3x3: (8 + 2 - 4 - 1) + 1 = 6 blocks per axis; block i,
    # offset j lands on i - 1 + 2j: j = 0 -> -1..4 (5 inside), j = 1 -> 1..6 (6),
    # j = 2 -> 3..8 (5): 16 inside, positions 0..7 all hit. Per channel 16*16 - 8*8 = 192,
    # 2 channels: 384
    r = kit.run(lambda x: F.fold(x, (8, 8), 3, padding=1, dilation=2), "1x18x36")
    assert r.total().cost.flops == 384


def test_equal_compares_everything(kit) -> None:  # noqa: ANN001
    # torch.equal on 3x4: 12 compares + 11 ands = 23 ; reads both (96 B), writes nothing
    r = kit.run(torch.equal, "3x4", "3x4", mode="real")
    assert r.total().cost == Cost(0, 23, 96, 0, 0)


def test_padding_gradients(kit) -> None:  # noqa: ANN001
    from torch import nn

    class Pad(nn.Module):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pad(x * self.w, (1, 2, 3, 4), mode=self.mode)

    for mode in ("reflect", "replicate"):
        for run in ("meta", "real"):
            r = kit.run(Pad(mode), "2x3x8x8", mode=run, backward=True)
            op = f"aten.{'reflection' if mode == 'reflect' else 'replication'}_pad2d_backward"
            c = r.by_operator("backward")[op].cost
            # grad_output (2, 3, 15, 11) = 990 values added into the input gradient: 990 ;
            # reads grad_output 3960 B (self only gives the shape), writes 2*3*8*8*4 = 1536
            assert c == Cost(0, 990, 3960, 1536, 0)
