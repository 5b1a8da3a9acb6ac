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
    # einsum -> bmm (1,8,8)@(1,8,8): 512 MACs, 960 FLOPs
    assert ops["aten.bmm"] == (1, 512, 960)
    # SDPA runs as the fused kernel a CPU runs, not the meta device's math path: 2*2 = 4
    # heads, Lq = Lk = E = 4, S = 4*4*4 = 64 scores (the full causal matrix is counted).
    # MACs Q@K^T 64*4 + P@V 64*4 = 512; FLOPs (2*4-1)*64 = 448 + scale 64 + softmax over 16
    # rows of 4 (5*4-2)*16 = 288 + P@V (2*4-1)*64 = 448 -> 1248
    assert ops["aten._scaled_dot_product_flash_attention_for_cpu"] == (1, 512, 1248)
    assert "aten.mul" not in ops and "aten._safe_softmax" not in ops and "aten.add" not in ops
    # torch.where over 2*4*8 = 64
    assert ops["aten.where"] == (1, 0, 64)
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
    assert t.flops == 960 + 960 + 1248 + 64 + 336 + 320 + 304 + 64 + 48 + 2304  # 6608


def test_functional_model_macs_match_flop_counter_mode() -> None:
    # FlopCounterMode on meta counts the math path's two bmm for the attention; modelmeter
    # counts the fused kernel, with the same MACs
    with FlopCounterMode(display=False) as fc:
        f(torch.empty(2, 4, 8, device="meta"), torch.empty(8, 8, device="meta"))
    assert 2 * modelmeter.analyze(f, ("2x4x8", "8x8")).total().cost.macs == fc.get_total_flops()
