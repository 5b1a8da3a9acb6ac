"""Review of attention: the fused backward kernels (MACs = FlopCounterMode's / 2), GQA in the
backward, empty "no mask" tensors, and the native MHA op with a separate key/value."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import modelmeter

aten = torch.ops.aten
B, H, LQ, LK, E = 2, 4, 6, 7, 8
S = B * H * LQ * LK  # 336 scores
# MACs of the backward: S*(3E + 2Ev) = 336*40 = 13440
MACS = S * (3 * E + 2 * E)
# exact FLOPs: recomputed Q@K^T 2*2688 - 336 = 5040, dP 5040, dV 5376 - 2*4*7*8 = 4928,
# dQ 5376 - 2*4*6*8 = 4992, dK 4928 -> 24928 ; per score 6*336 = 2016 ;
# D = rowsum(dO*O): 48 rows * (2*8 - 1) = 720 -> 27664
FLOPS = 5040 + 5040 + 4928 + 4992 + 4928 + 6 * S + 48 * 15


def _m(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype)


def _seed() -> torch.Tensor:
    return _m(2, dtype=torch.int64)


def _t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2)


BACKWARD: dict[str, Callable] = {
    "_scaled_dot_product_flash_attention_backward": lambda g, q, k, v, o, lse: (
        aten._scaled_dot_product_flash_attention_backward(
            g, q, k, v, o, lse, _m(0), _m(0), LQ, LK, 0.0, False, _seed(), _seed()
        )
    ),
    "_scaled_dot_product_efficient_attention_backward": lambda g, q, k, v, o, lse: (
        aten._scaled_dot_product_efficient_attention_backward(
            g, q, k, v, None, o, lse, _seed(), _seed(), 0.0, [True, True, True, False]
        )
    ),
    "_scaled_dot_product_cudnn_attention_backward": lambda g, q, k, v, o, lse: (
        # an empty attn_bias stands for no bias
        aten._scaled_dot_product_cudnn_attention_backward(
            g, q, k, v, o, lse, _seed(), _seed(), _m(0), _m(0), _m(0), LQ, LK, 0.0, False
        )
    ),
    "_flash_attention_backward": lambda g, q, k, v, o, lse: aten._flash_attention_backward(
        _t(g), _t(q), _t(k), _t(v), _t(o), lse, None, None, LQ, LK, 0.0, False, _seed(), _seed()
    ),
}


def _args() -> tuple[torch.Tensor, ...]:
    q, k = _m(B, H, LQ, E), _m(B, H, LK, E)
    return q.clone(), q, k, k.clone(), q.clone(), _m(B, H, LQ)


@pytest.mark.parametrize("op", list(BACKWARD))
def test_fused_backward_matches_flop_counter(op: str) -> None:
    fn = BACKWARD[op]
    r = modelmeter.analyze(fn, _args(), mode="meta")
    assert not r.unsupported
    c = r.by_operator()[f"aten.{op}"].cost
    assert (c.macs, c.flops) == (MACS, FLOPS)
    with FlopCounterMode(display=False) as fc:
        fn(*_args())
    assert 2 * c.macs == fc.get_total_flops()
    # 2mac: the five products count 2*MACs, the rest is the same: 26880 + 2016 + 720
    r2 = modelmeter.analyze(fn, _args(), mode="meta", convention="2mac")
    assert r2.total().cost.flops == 2 * MACS + 6 * S + 720


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q * self.w, k, v, is_causal=True, enable_gqa=True)


def test_cpu_training_step_counts_the_fused_backward() -> None:
    # real CPU: the forward runs _scaled_dot_product_flash_attention_for_cpu and its backward
    # _scaled_dot_product_flash_attention_for_cpu_backward (was unsupported)
    r = modelmeter.analyze(
        _Attention(), ("2x4x6x8", "2x2x7x8", "2x2x7x8"), mode="real", backward=True
    )
    assert not r.unsupported
    c = r.by_operator("backward")["aten._scaled_dot_product_flash_attention_for_cpu_backward"]
    # GQA: 4 query heads, 2 key/value heads: MACs as 4 heads = 13440; dV and dK have
    # 2*2*7*8 = 224 outputs each (the group's two heads summed in the same sums):
    # exact FLOPs 5040 + 5040 + (5376 - 224) + 4992 + (5376 - 224) + 2016 + 720 = 28096
    assert (c.cost.macs, c.cost.flops) == (MACS, 5040 + 5040 + 5152 + 4992 + 5152 + 2016 + 720)


def test_native_mha_with_a_separate_key() -> None:
    d, heads = 8, 2

    def mha(q: torch.Tensor, kv: torch.Tensor) -> object:
        w, b = torch.empty(3 * d, d, device=q.device), torch.empty(3 * d, device=q.device)
        pw, pb = torch.empty(d, d, device=q.device), torch.empty(d, device=q.device)
        return aten._native_multi_head_attention(q, kv, kv, d, heads, w, b, pw, pb)

    r = modelmeter.analyze(mha, (_m(2, 5, d), _m(2, 9, d)), mode="meta")
    c = r.by_operator()["aten._native_multi_head_attention"].cost
    # Q projection 10 rows * 8*8 = 640, K and V 2 * 18 rows * 64 = 2304, attention
    # 2*2 heads * 5*9 scores * (4 + 4) = 1440, output projection 640 -> 5024
    assert c.macs == 640 + 2304 + 1440 + 640
    # FLOPs: projections with bias 2*MACs: 1280 + 4608 + 1280 ; q rescale 80 ;
    # attention (no scale): Q@K^T (2*4 - 1)*180 = 1260, softmax 20 rows * (5*9 - 2) = 860,
    # P@V (2*9 - 1)*2*2*5*4 = 1360 ; averaged weights: 2 heads per (2, 5, 9) weight = 180
    assert c.flops == 1280 + 4608 + 1280 + 80 + 1260 + 860 + 1360 + 180
