"""Data movement: 0 FLOPs (except where stated) and the bytes each op really moves."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modelmeter.report import Cost


def test_cat_and_stack(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda a, b: torch.cat([a, b], 0), "2x4", "3x4")
    # reads 32 + 48 = 80 B, writes (5,4) 80 B, no arithmetic
    assert kit.ops(r) == {"aten.cat": 1}
    assert r.total().cost == Cost(0, 0, 80, 80, 0)
    # stack of two (3,4): reads 96, writes 96
    assert kit.run(lambda a, b: torch.stack([a, b]), "3x4", "3x4").total().cost == Cost(
        0, 0, 96, 96, 0
    )


def test_index_reads_only_selected_elements(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x, i: x[i], "100x8", "3:int64")
    # not the whole 100*8*4 = 3200 B source: index 3*8 = 24 B + 3 rows of 8 fp32 = 96 B -> 120
    assert kit.ops(r) == {"aten.index": 1}
    assert r.total().cost == Cost(0, 0, 120, 96, 0)


def test_index_of_a_weight_table_by_a_buffer_index(kit) -> None:  # noqa: ANN001
    class RelBias(nn.Module):  # like swin's relative position bias
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Parameter(torch.zeros(50, 4))
            self.register_buffer("idx", torch.zeros(6, dtype=torch.long))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.table[self.idx]

    r = kit.run(RelBias(), "6x4")
    c = r.total().cost
    # index: reads idx 6*8 = 48 B + 6 rows * 4 * 4 B = 96 B, both weights (param + buffer):
    # weight bytes 144 ; add: reads x 96 + gathered 96 = 192 ; total read 144 + 192 = 336
    assert (c.bytes_read, c.weight_bytes) == (336, 144)
    # writes: gathered 96 + sum 96 = 192 ; FLOPs: the add only, 24
    assert (c.bytes_written, c.flops) == (192, 24)


def test_index_select_and_gather(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x, i: x.index_select(1, i), "10x20", "4:int64")
    # out (10,4): reads index 32 B + 40 selected * 4 = 160 -> 192 ; writes 160
    assert r.total().cost == Cost(0, 0, 192, 160, 0)
    r = kit.run(lambda x, i: x.gather(1, i), "10x20", "10x3:int64")
    # out (10,3): reads index 30*8 = 240 + 30*4 = 120 -> 360 ; writes 120
    assert r.total().cost == Cost(0, 0, 360, 120, 0)


def test_scatter_add_out_of_place_and_in_place(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x, i, s: x.scatter_add(1, i, s), "4x10", "4x3:int64", "4x3")
    # 12 adds ; reads x 160 + index 96 + src 48 = 304 ; writes (4,10) 160
    assert r.total().cost == Cost(0, 12, 304, 160, 0)
    r = kit.run(lambda x, i, s: x.scatter_add_(1, i, s), "4x10", "4x3:int64", "4x3")
    # in place: reads index 96 + src 12*4 = 48 + the 12 updated elements 48 = 192 ;
    # writes the 12 updated elements 48
    assert r.total().cost == Cost(0, 12, 192, 48, 0)
    # plain scatter_ with a scalar value: no adds; reads index 96 ; writes 48
    r = kit.run(lambda x, i: x.scatter_(1, i, 1.0), "4x10", "4x3:int64")
    assert r.total().cost == Cost(0, 0, 96, 48, 0)


def test_index_put_accumulate_and_setitem(kit) -> None:  # noqa: ANN001
    def put(x: torch.Tensor, i: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return x.index_put((i,), v, accumulate=True)

    r = kit.run(put, "5x4", "2:int64", "2x4")
    # 2 rows of 4 accumulated: 8 adds ; reads x 80 + i 16 + v 32 = 128 ; writes 80
    assert r.total().cost == Cost(0, 8, 128, 80, 0)

    def setitem(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        x[i] = 1.0
        return x

    r = kit.run(setitem, "5x4", "2:int64")
    # index_put_ of a scalar: 2 indices x 4 columns = 8 elements ; reads i 16 + value 4 = 20
    # writes 8*4 = 32
    assert kit.ops(r) == {"aten.index_put_": 1}
    assert r.total().cost == Cost(0, 0, 20, 32, 0)


def test_index_add(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x, i, s: x.index_add(0, i, s), "3x4", "2:int64", "2x4")
    # 8 adds ; reads x 48 + i 16 + src 32 = 96 ; writes 48
    assert r.total().cost == Cost(0, 8, 96, 48, 0)
    r = kit.run(lambda x, i, s: x.index_add(0, i, s, alpha=2), "3x4", "2:int64", "2x4")
    assert r.total().cost.flops == 16  # add + multiply per src element: 2*8
    r = kit.run(lambda x, i, s: x.index_add_(0, i, s), "3x4", "2:int64", "2x4")
    # in place: reads i 16 + src 32 + updated 32 = 80 ; writes 32
    assert r.total().cost == Cost(0, 8, 80, 32, 0)


def test_padding(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: F.pad(x, (1, 1, 2, 0)), "1x2x3x4")
    # out (1,2,5,6) = 60 fp32 = 240 B ; reads 24*4 = 96
    assert kit.ops(r) == {"aten.constant_pad_nd": 1}
    assert r.total().cost == Cost(0, 0, 96, 240, 0)
    r = kit.run(lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), "1x2x3x4")
    # out (1,2,5,6) 240 B
    assert r.total().cost == Cost(0, 0, 96, 240, 0)
    r = kit.run(lambda x: F.pad(x, (1, 1), mode="replicate"), "1x2x4")
    assert r.total().cost == Cost(0, 0, 32, 48, 0)  # (1,2,6) = 48 B
    r = kit.run(lambda x: F.pad(x, (1, 1), mode="circular"), "1x2x4")
    assert r.total().cost.flops == 0


def test_copy_reads_source_writes_target(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda dst, src: dst.copy_(src), "4x5", "5:float16")
    # reads the broadcast fp16 source once: 5*2 = 10 B ; writes (4,5) fp32 80 B
    assert r.total().cost == Cost(0, 0, 10, 80, 0)


def test_clone_to_contiguous(kit) -> None:  # noqa: ANN001
    assert kit.run(lambda x: x.clone(), "3x4").total().cost == Cost(0, 0, 48, 48, 0)
    # a cast to fp16 reads 48 B of fp32 and writes 24 B
    assert kit.run(lambda x: x.to(torch.float16), "3x4").total().cost == Cost(0, 0, 48, 24, 0)
    assert kit.run(lambda x: x.t().contiguous(), "3x4").total().cost == Cost(0, 0, 48, 48, 0)


def test_fills_and_factories_read_nothing(kit) -> None:  # noqa: ANN001
    def f(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (torch.zeros_like(x), x.new_ones(2, 2), torch.full((3,), 2.0, device=x.device),
                torch.arange(10, device=x.device), x.fill_(1.0))

    r = kit.run(f, "3x4")
    # writes: 48 + 16 + 12 + 10 int64 80 + fill_ 48 = 204 ; reads 0 ; FLOPs 0
    assert r.total().cost == Cost(0, 0, 0, 204, 0)
    # linspace: start + i*step = 2 per element: 2*5 = 10 ; writes 20
    r = kit.run(lambda x: torch.linspace(0, 1, 5, device=x.device), "1")
    assert r.total().cost == Cost(0, 10, 0, 20, 0)


def test_random_and_dropout(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: torch.rand(3, 4, device=x.device), "1")
    assert r.total().cost == Cost(0, 0, 0, 48, 0)
    r = kit.run(lambda p: torch.bernoulli(p), "3x4")
    # bernoulli(probs): 1 compare per element 12 ; reads probs 48 ; writes 48
    assert r.total().cost == Cost(0, 12, 48, 48, 0)
    r = kit.run(lambda x: F.dropout(x, 0.5, training=True), "3x4")
    # bernoulli_ mask 12 + scale the mask (div_) 12 + apply it (mul) 12 = 36
    assert r.total().cost.flops == 36


def test_rearrangements(kit) -> None:  # noqa: ANN001
    for fn, written in [
        (lambda x: x.repeat(2, 1), 96),  # (6,4)
        (lambda x: x.roll(1, 1), 48),
        (lambda x: x.flip(1), 48),
        (lambda x: x.tril(), 48),
        (lambda x: torch.slice_scatter(x, x[:1], 0, 0, 1), 48),
    ]:
        c = kit.run(fn, "3x4").total().cost
        assert (c.flops, c.bytes_written) == (0, written)
    c = kit.run(lambda x: F.pixel_shuffle(x, 2), "1x4x3x1").total().cost
    assert c == Cost(0, 0, 48, 48, 0)
    # im2col of (1,1,3,4) with 2x2 kernels: 2*3 = 6 patches of 4 -> (1,4,6) = 96 B
    c = kit.run(lambda x: F.unfold(x, 2), "1x1x3x4").total().cost
    assert c == Cost(0, 0, 48, 96, 0)


def test_fold_adds_overlaps(kit) -> None:  # noqa: ANN001
    # fold (1, 4, 4) columns of 2x2 patches (stride 1) into 3x3: 16 values into 9 positions:
    # 16 - 9 = 7 adds ; reads 64 B ; writes 36 B
    c = kit.run(lambda x: F.fold(x, (3, 3), 2), "1x4x4").total().cost
    assert c == Cost(0, 7, 64, 36, 0)


def test_nonzero_and_masked_select_formulas(kit) -> None:  # noqa: ANN001
    x = kit.t(3, 4)
    # nonzero: 12 compares with 0 ; reads 48 ; writes (5,2) int64 80
    assert kit.cost("nonzero", {"self": x}, kit.t(5, 2, dtype="int64")) == Cost(0, 12, 48, 80, 0)
    mask = kit.t(3, 4, dtype="bool")
    # masked_select: reads x 48 + mask 12 = 60 ; writes 5 selected = 20 ; no arithmetic
    assert kit.cost("masked_select", {"self": x, "mask": mask}, kit.t(5)) == Cost(0, 0, 60, 20, 0)
    # data-dependent: falls back to real tensors, still no unsupported op
    r = kit.run(lambda x: x[x > 0], "3x4", mode="auto")
    assert r.mode == "real"


def test_inplace_scatter_formula_with_weight_index(kit) -> None:  # noqa: ANN001
    x, idx, src = kit.t(4, 10), kit.t(4, 2, dtype="int64", weight=True), kit.t(4, 2)
    c = kit.cost("scatter_", {"self": x, "dim": 1, "index": idx, "src": src}, x)
    # reads index 64 (a buffer: weight bytes) + 8 src elements 32 = 96 ; writes 8*4 = 32
    assert c == Cost(0, 0, 96, 32, 64)


# Found in review: data movement: fold (col2im) with padding, torch.equal, and the padding
# gradients.


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
