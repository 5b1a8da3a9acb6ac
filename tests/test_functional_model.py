"""A model made only of functional calls: nothing unsupported, totals derived by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import modelmeter


def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    h = x @ w  # (2,4,8) @ (8,8)
    h = torch.einsum("bld,de->ble", h, w)
    q = h.view(2, 4, 2, 4).transpose(1, 2)  # (batch 2, heads 2, len 4, dim 4)
    a = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    a = a.transpose(1, 2).reshape(2, 4, 8)
    a = F.layer_norm(a, (8,))
    a = F.gelu(a)
    a = torch.softmax(a, dim=-1)
    a = torch.where(a > 0.1, a, torch.zeros_like(a))
    a = torch.cumsum(a, dim=1)
    return F.interpolate(a.unsqueeze(1), scale_factor=2, mode="bilinear")


def test_functional_model_hand_counts() -> None:
    r = modelmeter.analyze(f, ("2x4x8", "8x8"))
    assert r.unsupported == {}
    ops = {k: (v.calls, v.cost.macs, v.cost.flops) for k, v in r.by_operator().items()}
    # x@w as one mm (8,8)@(8,8): 512 MACs, (2*8-1)*64 = 960 FLOPs
    assert ops["aten.mm"] == (1, 512, 960)
    # einsum -> bmm (1,8,8)@(1,8,8): 512 MACs, 960 FLOPs; attention Q@K^T and P@V are bmm
    # over 2*2 = 4 heads of (4,4)@(4,4): 4*4*4*4 = 256 MACs, (2*4-1)*64 = 448 FLOPs each
    # (the full causal score matrix is counted) -> 3 calls, 1024 MACs, 960 + 2*448 = 1856
    assert ops["aten.bmm"] == (3, 1024, 1856)
    # SDPA scales q and k by sqrt(scale): 2 muls of 2*2*4*4 = 64 elements -> 128
    assert ops["aten.mul"] == (2, 0, 128)
    # causal mask: where over (4,4) = 16, plus torch.where over 2*4*8 = 64 -> 80; the mask is
    # added to the 64 scores -> 64
    assert ops["aten.where"] == (2, 0, 80) and ops["aten.add"] == (1, 0, 64)
    # _safe_softmax over 16 rows of 4: (5*4 - 1)*16 = 304
    assert ops["aten._safe_softmax"] == (1, 0, 304)
    # layer_norm over 8 rows of 8, no affine: 5*64 + 2*8 = 336
    assert ops["aten.native_layer_norm"] == (1, 0, 336)
    # gelu (erf) 5 per element: 5*64 = 320 ; softmax over 8 rows of 8: (5*8 - 2)*8 = 304
    assert ops["aten.gelu"] == (1, 0, 320) and ops["aten._softmax"] == (1, 0, 304)
    # compare 64 ; cumsum along length 4 for 2*8 columns: 3*16 = 48
    assert ops["aten.gt"] == (1, 0, 64) and ops["aten.cumsum"] == (1, 0, 48)
    # bilinear to (2,1,8,16) = 256 outputs, 9 FLOPs each = 2304
    assert ops["aten.upsample_bilinear2d"] == (1, 0, 2304)
    t = r.total().cost
    assert t.macs == 512 + 1024
    assert t.flops == 960 + 1856 + 128 + 80 + 64 + 304 + 336 + 320 + 304 + 64 + 48 + 2304  # 6768


def test_functional_model_macs_match_flop_counter_mode() -> None:
    # on meta, as modelmeter runs it (FlopCounterMode has no formula for the CPU flash kernel
    # that real CPU tensors would take, and would count that attention as 0)
    with FlopCounterMode(display=False) as fc:
        f(torch.empty(2, 4, 8, device="meta"), torch.empty(8, 8, device="meta"))
    assert 2 * modelmeter.analyze(f, ("2x4x8", "8x8")).total().cost.macs == fc.get_total_flops()
