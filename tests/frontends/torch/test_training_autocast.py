"""A mixed-precision training step follows CUDA autocast's policy in its forward: which ops
run in which dtype, the casts it adds and the bytes they move, derived by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from autocast_models import Tiny
from torch import nn

from modelmeter.errors import InputError
from modelmeter.usecases.train import train

B = 4


def forward_ops(result) -> list[tuple[str, str, int, int]]:  # noqa: ANN001
    """(op, dtype, bytes read, bytes written) of the forward, in the order they ran."""
    recs = sorted((r for n in result.report.modules() for r in n.ops if r.phase == "forward"),
                  key=lambda r: r.seq)  # fmt: skip
    return [(r.op.removeprefix("aten."), r.dtype, r.cost.bytes_read, r.cost.bytes_written)
            for r in recs]  # fmt: skip


def test_bf16_mixed_forward_runs_each_op_in_autocasts_dtype() -> None:
    ops = forward_ops(train(Tiny(), (B, 8), optimizer="sgd", precision="bf16-mixed"))
    # weights and the input are bf16 (the step's layout: half weights, fp32 masters)
    assert ops[:8] == [
        # fc1, on the low list, all bf16 already: bias 16 x 2 + x 4 x 8 x 2 + W 8 x 16 x 2 =
        # 32 + 64 + 256 = 352 read; 4 x 16 x 2 = 128 written
        ("addmm", "bfloat16", 352, 128),
        # layer_norm, on the fp32 list: its input cast (64 elements: 128 -> 256 bytes), its
        # weight and bias too (16 each: 32 -> 64; to fp32: not cached)
        ("_to_copy", "bfloat16", 128, 256),
        ("_to_copy", "bfloat16", 32, 64),
        ("_to_copy", "bfloat16", 32, 64),
        # in fp32: read 256 + 64 + 64 = 384; write 256 + mean and 1/std 4 x 4 x 2 = 288
        ("native_layer_norm", "float32", 384, 288),
        # softmax, fp32 with no cast (its input is fp32 already): 256 read, 256 written
        ("_softmax", "float32", 256, 256),
        ("zeros", "int64", 0, 32),  # the target, 4 x 8 bytes
        # fc2, low list: the fp32 probabilities cast down (256 -> 128), then bf16: bias
        # 4 x 2 + 128 + W 16 x 4 x 2 = 264 read, 4 x 4 x 2 = 32 written
        ("_to_copy", "float32", 256, 128),
    ]
    assert ops[8] == ("addmm", "bfloat16", 264, 32)
    # cross_entropy is not listed: it asks log_softmax for its input's dtype (bf16, kept) and
    # nll_loss, on the fp32 list, casts the log-probabilities up (32 -> 64 bytes)
    assert ops[9:11] == [("_log_softmax", "bfloat16", 32, 32), ("_to_copy", "bfloat16", 32, 64)]


def test_bf16_mixed_saves_the_fp32_tensors_autocast_makes() -> None:
    mixed = train(Tiny(), (B, 8), optimizer="sgd", precision="bf16-mixed")
    pure = train(Tiny(), (B, 8), optimizer="sgd", precision="bf16")
    # pure bf16 saves: layer_norm's input 4 x 16 x 2 = 128 and its fp32 mean and 1/std
    # 2 x 4 x 4 = 32; softmax's output 128 (also fc2's input); log_softmax's output 32 (also
    # nll_loss's input); the target 32; nll_loss's total weight 2 and the loss 2 (bf16
    # scalars): 128 + 32 + 128 + 32 + 32 + 2 + 2 = 356
    assert pure.memory.activations == 356
    # bf16-mixed saves layer_norm's fp32 input 256, its fp32 weight and bias 64 + 64, mean
    # and 1/std 32; softmax's fp32 output 256 and fc2's bf16 cast of it 128; log_softmax's
    # output 32 and nll_loss's fp32 cast of it 64; the target 32; the total weight 4 and the
    # loss 4 (fp32): 256 + 128 + 32 + 256 + 128 + 32 + 64 + 32 + 4 + 4 = 936
    assert mixed.memory.activations == 936
    # the model states do not change: (2 + 2 + 4 master + 4 momentum) x 244 parameters
    assert mixed.model_states == 12 * (8 * 16 + 16 + 16 + 16 + 16 * 4 + 4) == 12 * 244


def test_fp16_mixed_runs_the_low_list_in_float16() -> None:
    ops = forward_ops(train(Tiny(), (B, 8), optimizer="sgd", precision="fp16-mixed"))
    assert ops[0] == ("addmm", "float16", 352, 128)  # as bf16: 2 bytes an element
    assert ("native_layer_norm", "float32", 384, 288) in ops
    assert ops[8] == ("addmm", "float16", 264, 32)


class Blocks(nn.Module):
    """Two blocks of LayerNorm and Linear 16 -> 16 in an nn.ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16)) for _ in range(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def test_recomputation_follows_the_policy_as_the_forward_did() -> None:
    r = train(Blocks(), (B, 16), optimizer="sgd", precision="bf16-mixed", checkpointing=True)
    recs = [rec for n in r.report.modules() for rec in n.ops]
    dtypes = {(rec.phase, rec.op): rec.dtype for rec in recs}
    # PyTorch's checkpoint restores autocast for the recomputation: the layer norms run in
    # fp32 and the linears in bf16 there as in the forward
    for phase in ("forward", "recompute"):
        assert dtypes[(phase, "aten.native_layer_norm")] == "float32"
    assert dtypes[("forward", "aten.addmm")] == "bfloat16"


class Probabilities(nn.Module):
    """A Linear, a sigmoid and ``binary_cross_entropy``, which autocast refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.fc(x).sigmoid().squeeze(1)
        return F.binary_cross_entropy(p, torch.ones_like(p))


def test_binary_cross_entropy_is_refused_under_mixed_precision_only() -> None:
    with pytest.raises(InputError, match="binary_cross_entropy is unsafe to autocast"):
        train(Probabilities(), (B, 8), optimizer="sgd", precision="bf16-mixed")
    # without autocast it runs: pure bf16 and fp32 steps are counted
    assert train(Probabilities(), (B, 8), optimizer="sgd", precision="bf16").memory.gradients
