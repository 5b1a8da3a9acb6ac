"""Scaled dot-product attention in a meta trace counts as the fused kernel PyTorch's CPU
backend runs (frontends/torch/fused.py), and broadcast views are read once. The reference is
PyTorch itself: the same call traced on real CPU tensors, where its dispatcher picks the
kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import modelmeter
from modelmeter.frontends.torch.fused import fusable

FUSED = "aten._scaled_dot_product_flash_attention_for_cpu"
Q, K = "2x4x6x8", "2x4x7x8"  # b=2, h=4, Lq=6, Lk=7, E=Ev=8


def _ops(report: modelmeter.Report) -> dict[str, tuple[int, int, int, int, int]]:
    return {
        k: (v.calls, v.cost.macs, v.cost.flops, v.cost.bytes_read, v.cost.bytes_written)
        for k, v in report.by_operator().items()
    }


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def masked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=m)


def gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (sdpa, (Q, K, K)),
        (causal, (Q, K, K)),
        (masked, (Q, K, K, "6x7")),
        (gqa, (Q, "2x2x7x8", "2x2x7x8")),
        (sdpa, ("1x2x5x4:bf16", "1x2x9x4:bf16", "1x2x9x4:bf16")),
    ],
)
def test_meta_trace_counts_what_the_cpu_runs(fn: object, shapes: tuple[str, ...]) -> None:
    meta = modelmeter.analyze(fn, shapes)  # meta is the default
    real = modelmeter.analyze(fn, shapes, mode="real")
    assert meta.mode == "meta" and real.mode == "real"
    assert list(meta.by_operator()) == [FUSED] == list(real.by_operator())
    assert _ops(meta) == _ops(real)


def test_fused_bytes_by_hand() -> None:
    (row,) = _ops(modelmeter.analyze(sdpa, (Q, K, K))).values()
    # read q 2*4*6*8*4 = 1536 + k 2*4*7*8*4 = 1792 + v 1792 = 5120; written: the output
    # 1536 + log-sum-exp 2*4*6 float32 = 192 -> 1728. The math path also wrote and read the
    # 2*4*6*7 score matrix twice over (scores, softmax).
    assert row[3:] == (5120, 1728)


def test_bool_mask_is_made_additive_first() -> None:
    r = modelmeter.analyze(masked, (Q, K, K, "6x7:bool"))
    ops = _ops(r)
    # where over the 6x7 mask: 42 FLOPs; reads the mask 42 B and two 4-byte scalars, writes
    # 42 float32 = 168 B
    assert ops["aten.where"] == (1, 0, 42, 42 + 8, 168)
    # then the fused kernel with a float mask: + 1 FLOP per score, 2*4*6*7 = 336
    real = _ops(modelmeter.analyze(masked, (Q, K, K, "6x7"), mode="real"))
    assert ops[FUSED][:3] == real[FUSED][:3]


@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (sdpa, ("3x2x5x4", "3x2x9x4", "3x2x9x6")),  # value head size differs: math path
        (sdpa, ("4x6x8", "4x7x8", "4x7x8")),  # 3-D: math path
        (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.5),
            (Q, K, K),
        ),
    ],
)
def test_calls_the_cpu_runs_unfused_keep_the_math_path(fn: object, shapes: tuple) -> None:
    ops = modelmeter.analyze(fn, shapes).by_operator()
    assert FUSED not in ops and "aten.bmm" in ops


def test_the_function_is_restored_after_a_trace() -> None:
    original = F.scaled_dot_product_attention
    modelmeter.analyze(sdpa, (Q, K, K))
    assert F.scaled_dot_product_attention is original

    def broken(q: torch.Tensor) -> torch.Tensor:
        F.scaled_dot_product_attention(q, q, q)
        raise RuntimeError("model bug")

    with pytest.raises(modelmeter.ModelmeterError):
        modelmeter.analyze(broken, (Q,), mode="meta")
    assert F.scaled_dot_product_attention is original


def test_only_meta_tensors_are_redirected() -> None:
    q = torch.zeros(1, 2, 3, 4)
    bound = {"query": q, "key": q, "value": q, "attn_mask": None, "dropout_p": 0.0,
             "is_causal": False, "scale": None, "enable_gqa": False}
    assert not fusable(bound)
    assert fusable({**bound, **{k: q.to("meta") for k in ("query", "key", "value")}})


class _Attention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return F.scaled_dot_product_attention(h, h, h)


def test_backward_of_the_fused_kernel() -> None:
    r = modelmeter.analyze(_Attention(), Q, backward=True)
    ops = r.by_operator()
    assert FUSED in ops and f"{FUSED}_backward" in ops
    # backward MACs: dV, dP, dQ, dK products (2x forward) plus the recomputed scores
    assert ops[f"{FUSED}_backward"].cost.macs > ops[FUSED].cost.macs


def test_a_broadcast_operand_is_read_once() -> None:
    def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x, w.expand(8, 4, 4))

    (row,) = _ops(modelmeter.analyze(f, ("8x4x4", "4x4"))).values()
    # MACs 8*4*4*4 = 512 (FLOPs use the logical shape); read x 8*4*4*4 B = 512 + w 4*4*4 B =
    # 64 once (not 8 x 64 = 512); written 512
    assert row == (1, 512, 8 * 4 * 4 * 7, 512 + 64, 512)
