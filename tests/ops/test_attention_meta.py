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
        (masked, (Q, K, K, "6x7:bool")),  # made additive by one where, as the CPU does
        (masked, ("2x4x6x8:bf16", "2x4x7x8:bf16", "2x4x7x8:bf16", "6x7")),  # float32 mask
        (masked, (Q, K, K, "2x1x6x7")),  # a 4-D mask broadcast over heads
    ],
)
def test_meta_trace_counts_what_the_cpu_runs(fn: object, shapes: tuple[str, ...]) -> None:
    meta = modelmeter.analyze(fn, shapes)  # meta is the default
    real = modelmeter.analyze(fn, shapes, mode="real")
    assert meta.mode == "meta" and real.mode == "real"
    assert FUSED in meta.by_operator()
    assert _ops(meta) == _ops(real)  # the same ops, counts and bytes


def test_fused_bytes_by_hand() -> None:
    (row,) = _ops(modelmeter.analyze(sdpa, (Q, K, K))).values()
    # read q 2*4*6*8*4 = 1536 + k 2*4*7*8*4 = 1792 + v 1792 = 5120; written: the output
    # 1536 + log-sum-exp 2*4*6 float32 = 192 -> 1728. The math path also wrote and read the
    # 2*4*6*7 score matrix twice over (scores, softmax).
    assert row[3:] == (5120, 1728)


def test_bool_mask_is_made_additive_first() -> None:
    r = modelmeter.analyze(masked, (Q, K, K, "6x7:bool"))
    ops = _ops(r)
    assert set(ops) == {"aten.where", FUSED}  # the scalars are not ops
    # where over the 6x7 mask: 42 FLOPs; reads the mask 42 B and two 4-byte scalars, writes
    # 42 float32 = 168 B
    assert ops["aten.where"] == (1, 0, 42, 42 + 8, 168)
    # then the fused kernel with a float mask: + 1 FLOP per score, 2*4*6*7 = 336
    real = _ops(modelmeter.analyze(masked, (Q, K, K, "6x7"), mode="real"))
    assert ops[FUSED][:3] == real[FUSED][:3]


def _transposed_q(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # q's last dimension is not contiguous (stride 6): the CPU runs the math path
    return F.scaled_dot_product_attention(q.transpose(-1, -2), k, v)


@pytest.mark.parametrize(
    ("fn", "shapes"),
    [
        (masked, (Q, K, K, "1x6x7")),  # a 3-D mask
        (_transposed_q, ("2x4x8x6", K, K)),
        (sdpa, (Q, "1x4x7x8", "1x4x7x8")),  # key and value broadcast over the batch
    ],
)
def test_what_the_cpu_runs_unfused_stays_unfused(fn: object, shapes: tuple) -> None:
    # compared with PyTorch's own choice on real CPU tensors
    meta = modelmeter.analyze(fn, shapes)
    real = modelmeter.analyze(fn, shapes, mode="real")
    assert FUSED not in real.by_operator()
    assert FUSED not in meta.by_operator()
    assert meta.total().cost.macs == real.total().cost.macs


def test_positional_scale_is_refused_as_pytorch_refuses_it() -> None:
    def bad(q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q, None, 0.0, False, 0.5)

    with pytest.raises(modelmeter.ModelmeterError, match="positional"):
        modelmeter.analyze(bad, (Q,), mode="meta")


class _LearnedBias(torch.nn.Module):
    """A learned additive attention bias (BEiT-style): the fused kernel has no gradient for
    a mask, so this must stay on the math path when the backward pass is traced."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)
        self.bias = torch.nn.Parameter(torch.zeros(6, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return F.scaled_dot_product_attention(h, h, h, attn_mask=self.bias)


def test_a_learned_mask_keeps_the_math_path_in_training() -> None:
    r = modelmeter.analyze(_LearnedBias(), "2x4x6x8", backward=True, mode="meta")
    assert r.mode == "meta" and FUSED not in r.by_operator()
    # inference: the bias needs no gradient (no_grad trace), so the kernel is fused
    assert FUSED in modelmeter.analyze(_LearnedBias(), "2x4x6x8").by_operator()


def test_overlapping_traces_in_threads_restore_the_function() -> None:
    import threading

    from modelmeter.frontends.torch.fused import fused_attention

    original = F.scaled_dot_product_attention
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with fused_attention():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with fused_attention():
            b_in.set()
            a_out.wait(5)  # the first trace ends while this one runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert F.scaled_dot_product_attention is original


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
