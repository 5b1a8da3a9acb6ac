"""The grouped matmul of mixture-of-experts layers (``aten._grouped_mm``): its four forms
against hand counts and against the per-group ``mm`` loop it stands for, and a float32 trace
on meta (whose meta kernel takes only bfloat16)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import modelmeter

if not hasattr(torch, "_grouped_mm"):
    pytest.skip("this PyTorch has no _grouped_mm", allow_module_level=True)

OFFS = torch.tensor([3, 5, 8], dtype=torch.int32)  # three groups of 3, 2 and 3


def test_2d_by_3d_rows_split(kit) -> None:  # noqa: ANN001
    # (8,16) rows split 3/2/3 over 3 experts' (16,32): sum m_g*16*32 = 8*16*32 = 4,096 MACs;
    # exact FLOPs: 8*32 = 256 outputs of 16 products: (2*16-1)*256 = 7,936; 2mac 8,192
    args = {"self": kit.t(8, 16), "mat2": kit.t(3, 16, 32), "offs": kit.t(3, dtype="int32")}
    c = kit.cost("_grouped_mm", args, kit.t(8, 32))
    assert (c.macs, c.flops) == (4_096, 7_936)
    assert kit.cost("_grouped_mm", args, kit.t(8, 32), convention="2mac").flops == 8_192
    # with a bias: one add per output takes the place of the missing one: 2*4,096 = 8,192
    c = kit.cost("_grouped_mm", {**args, "bias": kit.t(3, 32)}, kit.t(8, 32))
    assert c.flops == 8_192


def test_other_forms(kit) -> None:  # noqa: ANN001
    offs = kit.t(3, dtype="int32")
    # 3D (3,8,16) x 2D (16,8), columns split 3/2/3: output (8,8), each of 16 products:
    # 8*8*16 = 1,024 MACs; (2*16-1)*64 = 1,984 FLOPs
    c = kit.cost("_grouped_mm", {"self": kit.t(3, 8, 16), "mat2": kit.t(16, 8), "offs": offs},
                 kit.t(8, 8))
    assert (c.macs, c.flops) == (1_024, 1_984)
    # 2D (8,16) x 2D (16,8), K split into 3 groups: output (3,8,8); sum over groups of
    # 8*k_g*8 = 8*16*8 = 1,024 MACs; outputs 192: 2*1,024 - 192 = 1,856 FLOPs
    c = kit.cost("_grouped_mm", {"self": kit.t(8, 16), "mat2": kit.t(16, 8), "offs": offs},
                 kit.t(3, 8, 8))
    assert (c.macs, c.flops) == (1_024, 1_856)
    # 3D x 3D, no offsets: a batched matmul (3,8,16)@(3,16,8): 3*8*16*8 = 3,072 MACs
    c = kit.cost("_grouped_mm", {"self": kit.t(3, 8, 16), "mat2": kit.t(3, 16, 8)},
                 kit.t(3, 8, 8))
    assert c.macs == 3_072


def _grouped(a: torch.Tensor, b: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    return torch._grouped_mm(a, b, offs=offs)


def _looped(a: torch.Tensor, b: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    ends = offs.tolist()
    starts = [0, *ends[:-1]]
    return torch.cat([a[s:e] @ b[g] for g, (s, e) in enumerate(zip(starts, ends))])


def test_same_as_the_per_group_loop() -> None:
    # the grouped op and the loop of mm it stands for, on real bfloat16 tensors: same result
    # and the same MACs (3*16*32 + 2*16*32 + 3*16*32 = 4,096); FlopCounterMode counts the loop
    # (2 * 4,096 = 8,192) but counts nothing for _grouped_mm
    a, b = torch.randn(8, 16).bfloat16(), torch.randn(3, 16, 32).bfloat16()
    assert torch.equal(_grouped(a, b, OFFS), _looped(a, b, OFFS))
    grouped = modelmeter.analyze(lambda x, y: _grouped(x, y, OFFS), (a, b), mode="real")
    looped = modelmeter.analyze(lambda x, y: _looped(x, y, OFFS), (a, b), mode="real")
    assert grouped.unsupported == {} and looped.unsupported == {}
    assert grouped.total().macs == looped.total().macs == 4_096
    with FlopCounterMode(display=False) as fcm:
        _looped(a, b, OFFS)
    assert fcm.get_total_flops() == 2 * 4_096


def test_float32_on_meta() -> None:
    # the meta kernel takes only bfloat16; the tracer builds the output from the shapes, so a
    # float32 trace on meta counts the same op: 8*16*32 = 4,096 MACs, output (8,32) float32
    offs = torch.empty(3, dtype=torch.int32, device="meta")
    r = modelmeter.analyze(lambda x, y: _grouped(x, y, offs), ("8x16", "3x16x32"), mode="meta")
    assert r.unsupported == {}
    ((key, stat),) = [(k, v) for k, v in r.by_operator().items() if v.cost.macs]
    assert (key, stat.cost.macs) == ("aten._grouped_mm", 4_096)
    # bytes: reads 8*16 + 3*16*32 floats and 3 int32 offsets, writes 8*32 floats
    assert stat.cost.bytes_read == (8 * 16 + 3 * 16 * 32) * 4 + 3 * 4
    assert stat.cost.bytes_written == 8 * 32 * 4


def test_meta_refusal_other_than_dtype_still_raised() -> None:
    # a shape the op refuses (K 16 against 17) is not papered over by the shape fallback
    offs = torch.empty(3, dtype=torch.int32, device="meta")
    with pytest.raises(Exception):  # noqa: B017,PT011
        modelmeter.analyze(lambda x, y: _grouped(x, y, offs), ("8x16", "3x17x32"), mode="meta")
