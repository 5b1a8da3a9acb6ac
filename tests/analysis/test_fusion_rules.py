"""The compiler-like fusion rules (``cast``, ``reduction``, ``rotary``) on hand-built op
sequences as a transformer decoder runs them, their bytes by hand; the earlier rules alone
fuse these as before."""

from __future__ import annotations

import pytest

from modelmeter.analysis.fusion import RULES, fuse, fusion_plan, parse_rules
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

OLD = ("elementwise", "conv-bn-act", "attention")


def rec(op: str, cost: Cost, dtype: str, *shapes: tuple[int, ...], seq: int) -> OpRecord:
    return OpRecord(op, cost, dtype=dtype, shapes=shapes, seq=seq)


def report(ops: list[OpRecord]) -> Report:
    root = ModuleNode("", "Block", 0, 1, ops=ops)
    return Report("block", "torch", "exact", "meta", [InputSpec((2, 64), "bfloat16")], root)


def rms_norm() -> Report:
    """A residual add, then a bfloat16 RMSNorm over 2 rows of 64 as transformers runs it
    (x.to(float32); x * rsqrt(mean(x^2) + eps); .to(bfloat16); weight * that):

    0 add      bf16 2x64 + 2x64:   read 256 + 256 = 512, written 256
    1 _to_copy bf16 -> f32:        read 256, written 512
    2 pow      f32:                read 512, written 512
    3 mean     f32 -> 2x1:         read 512, written 8
    4 add eps  f32 2x1:            read 8, written 8
    5 rsqrt    f32 2x1:            read 8, written 8
    6 mul      x (2x64) * r (2x1): read 512 + 8 = 520, written 512
    7 _to_copy f32 -> bf16:        read 512, written 256
    8 mul      weight (64) * 2x64: read 128 + 256 = 384 (weight 128), written 256

    Summed: read 3,224, written 2,328.
    """
    return report([
        rec("aten.add", Cost(0, 128, 512, 256), "bfloat16", (2, 64), (2, 64), seq=0),
        rec("aten._to_copy", Cost(0, 0, 256, 512), "bfloat16", (2, 64), seq=1),
        rec("aten.pow", Cost(0, 128, 512, 512), "float32", (2, 64), seq=2),
        rec("aten.mean", Cost(0, 128, 512, 8), "float32", (2, 64), seq=3),
        rec("aten.add", Cost(0, 2, 8, 8), "float32", (2, 1), seq=4),
        rec("aten.rsqrt", Cost(0, 2, 8, 8), "float32", (2, 1), seq=5),
        rec("aten.mul", Cost(0, 128, 520, 512), "float32", (2, 64), (2, 1), seq=6),
        rec("aten._to_copy", Cost(0, 0, 512, 256), "float32", (2, 64), seq=7),
        rec("aten.mul", Cost(0, 128, 384, 256, 128), "bfloat16", (64,), (2, 64), seq=8),
    ])  # fmt: skip


def rotary() -> Report:
    """q * cos + rotate_half(q) * sin, q 1x4x2x16 float32 (Q = 512 bytes), cos and sin
    1x1x2x16 (128 bytes each):

    0 mul  q * cos:                 read 512 + 128 = 640, written 512
    1 neg  of q's second half:      read 256, written 256
    2 cat  (-x2, x1):               read 256 + 256 = 512, written 512
    3 mul  that * sin:              read 640, written 512
    4 add  q * cos + that:          read 1,024, written 512

    Summed: read 3,072, written 2,304.
    """
    return report([
        rec("aten.mul", Cost(0, 128, 640, 512), "float32", (1, 4, 2, 16), (1, 1, 2, 16), seq=0),
        rec("aten.neg", Cost(0, 64, 256, 256), "float32", (1, 4, 2, 8), seq=1),
        rec("aten.cat", Cost(0, 0, 512, 512), "float32", (1, 4, 2, 8), (1, 4, 2, 8), seq=2),
        rec("aten.mul", Cost(0, 128, 640, 512), "float32", (1, 4, 2, 16), (1, 1, 2, 16), seq=3),
        rec("aten.add", Cost(0, 128, 1_024, 512), "float32", (1, 4, 2, 16), (1, 4, 2, 16),
            seq=4),
    ])  # fmt: skip


def attention() -> Report:
    """Q @ K^T, + bias, softmax, V made contiguous, P @ V (float32; batch 2, 4 tokens, dim
    8), as in tests/analysis/test_fusion.py: bmm read 512, written the scores 128; add read
    128 + bias 64, written 128; softmax read 128, written 128; clone read V 256, written
    256; bmm read 128 + 256, written 256."""
    return report([
        rec("aten.bmm", Cost(256, 480, 512, 128), "float32", (2, 4, 8), (2, 8, 4), seq=0),
        rec("aten.add", Cost(0, 32, 192, 128), "float32", (2, 4, 4), (1, 4, 4), seq=1),
        rec("aten._softmax", Cost(0, 96, 128, 128), "float32", (2, 4, 4), seq=2),
        rec("aten.clone", Cost(0, 0, 256, 256), "float32", (2, 4, 8), seq=3),
        rec("aten.bmm", Cost(256, 448, 384, 256), "float32", (2, 4, 4), (2, 4, 8), seq=4),
    ])  # fmt: skip


def kernels(r: Report) -> list[Cost]:
    return [o.cost for n in r.modules() for o in n.ops]


def test_all_holds_the_new_rules() -> None:
    assert parse_rules("all") == RULES == (*OLD, "cast", "reduction", "rotary")
    assert parse_rules("cast,rotary") == ("cast", "rotary")


def test_rms_norm_is_one_kernel_under_all_rules() -> None:
    (cost,) = kernels(fuse(rms_norm(), RULES))
    # read: 3,224 less the cast's input 256 (the add's output, on chip), pow's 512 (the
    # cast's output), mean's 512 (pow's), add's 8 and rsqrt's 8 (mean's, add's), mul's
    # 8 + 512 (rsqrt's, and x: the cast's output again), the second cast's 512 (mul's),
    # the weight mul's 256 (the cast's) = 3,224 - 2,584 = 640: the add's two inputs and
    # the weight.
    # written: 2,328 less each of those outputs once (256 + 512 + 512 + 8 + 8 + 8 + 512 +
    # 256 = 2,072) = 256: the norm's output. (The add's output is taken to have no other
    # reader, as every intermediate: a residual stream read later is not counted again.)
    assert (cost.bytes_read, cost.bytes_written) == (640, 256)
    assert cost.flops == 128 + 128 + 128 + 2 + 2 + 128 + 128 and cost.weight_bytes == 128


def test_rms_norm_under_the_earlier_rules() -> None:
    # add | cast + pow (pow reads the cast's output) | mean + add + rsqrt | mul (its first
    # input is x, 512 bytes, not rsqrt's 8) | cast (a movement op) | mul (its first input
    # is the weight, 128 bytes, not the cast's 256): 6 kernels, as before the new rules
    assert len(kernels(fuse(rms_norm(), OLD))) == 6
    # the casts alone join the add and the mul: add + cast + pow | mean + add + rsqrt |
    # mul + cast | mul = 4
    assert len(kernels(fuse(rms_norm(), (*OLD, "cast")))) == 4


def test_reduction_rule_without_casts() -> None:
    # "reduction" alone, with the casts movement ops: add | cast | pow + mean + add + rsqrt
    # + mul | cast | mul: the mean joins pow, the add and rsqrt read its result, mul reads
    # rsqrt's (x from memory: its kernel started at pow, whose input x is); the weight mul
    # after the second cast starts its own (a movement op is between it and the reduction)
    r = fuse(rms_norm(), ("reduction",))
    costs = kernels(r)
    assert len(costs) == 5
    # pow + ... + mul: read 512 + 512 + 8 + 8 + 520 = 1,560 less 512 (pow's output) + 8 + 8
    # + 8 (mean's, add's, rsqrt's) + 512 (x again: pow's input, which pow read) = 512;
    # written 512 + 8 + 8 + 8 + 512 less 512 + 8 + 8 + 8 = 512
    assert (costs[2].bytes_read, costs[2].bytes_written) == (512, 512)


def test_rotary_is_one_kernel() -> None:
    for rules in (RULES, ("rotary",)):
        (cost,) = kernels(fuse(rotary(), rules))
        # read: 3,072 less neg's 256 and cat's 512 (halves of q, which q * cos read), mul's
        # 512 (the cat's output), add's 512 + 512 (both products) = 3,072 - 2,304 = 768:
        # q, cos and sin. written: 2,304 less the neg's 256, the cat's 512 and both
        # products' 512 + 512 = 512: the output
        assert (cost.bytes_read, cost.bytes_written) == (768, 512)
        assert cost.flops == 128 + 64 + 128 + 128


def test_rotary_under_the_earlier_rules() -> None:
    # mul | neg (its input is half of mul's output) | cat + mul + add (the cat is a
    # movement op: it starts a kernel, the mul reads its output, the add the mul's)
    costs = kernels(fuse(rotary(), OLD))
    assert len(costs) == 3
    # cat + mul + add: read 512 + 640 + 1,024 less 512 (cat's) and 512 (mul's) = 1,152
    assert costs[2].bytes_read == 1_152


def test_softmax_joins_the_scores_pointwise_ops() -> None:
    # elementwise alone: bmm + add | softmax | clone | bmm; with reduction the softmax
    # joins (a reduction after pointwise ops): bmm + add + softmax | clone | bmm
    assert len(kernels(fuse(attention(), ("elementwise",)))) == 4
    costs = kernels(fuse(attention(), ("elementwise", "reduction")))
    assert len(costs) == 3
    # read 512 + 192 + 128 less 128 (bmm's scores) and 128 (add's) = 576, written 128
    assert (costs[0].bytes_read, costs[0].bytes_written) == (576, 128)
    # the attention rule keeps its flash kernel under all rules
    assert len(kernels(fuse(attention(), RULES))) == 1


@pytest.mark.parametrize("rules", [RULES, OLD, ("cast", "reduction", "rotary")])
def test_plan_replays_to_the_same_costs(rules: tuple[str, ...]) -> None:
    for r in (rms_norm(), rotary()):
        assert kernels(fusion_plan(r, rules).apply(r)) == kernels(fuse(r, rules))


def test_decomposed_layer_norm_is_one_kernel() -> None:
    """(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * w + b over 4 rows of 64, float32,
    as the torch frontend counts it (x: 1,024 bytes; each row's statistic 16 bytes; w and b
    256 bytes each):

    mean r 1,024 w 16 | sub r 1,040 w 1,024 | pow r 1,024 w 1,024 | mean r 1,024 w 16 |
    add r 16 w 16 | sqrt r 16 w 16 | div r 1,040 w 1,024 | mul r 1,280 w 1,024 |
    add r 1,280 w 1,024: read 7,744, written 5,184, 12,928 moved.
    """
    torch = pytest.importorskip("torch")
    import modelmeter

    class LayerNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(64))
            self.b = torch.nn.Parameter(torch.zeros(64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = x - x.mean(-1, keepdim=True)
            return d / torch.sqrt(d.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w + self.b

    r = modelmeter.analyze(LayerNorm(), "4x64")
    c = r.total().cost
    assert (c.bytes_read, c.bytes_written) == (7_744, 5_184)
    # earlier rules: mean | sub + pow (sub's first input is x, not the mean) | mean + add +
    # sqrt | div + mul + add (div's first input is x - mean, not the sqrt): 4 kernels
    assert len(kernels(fuse(r, OLD))) == 4
    (cost,) = kernels(fuse(r, RULES))
    # one kernel: sub reads the mean on chip and x again (what the mean read), div reads
    # x - mean on chip: it reads x, w and b (1,024 + 256 + 256 = 1,536) and writes the
    # output (1,024)
    assert (cost.bytes_read, cost.bytes_written) == (1_536, 1_024)


def test_var_mean_layer_norm_is_one_kernel() -> None:
    """v, m = var_mean(x); (x - m) * rsqrt(v + eps) * w + b over 4 rows of 64, float32:

    var_mean r 1,024 w 32 (variance and mean, 16 bytes each) | sub r 1,040 w 1,024 |
    add r 16 w 16 | rsqrt r 16 w 16 | mul r 1,040 w 1,024 | mul r 1,280 w 1,024 |
    add r 1,280 w 1,024: read 5,696, written 4,160.
    """
    torch = pytest.importorskip("torch")
    import modelmeter

    class LayerNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(64))
            self.b = torch.nn.Parameter(torch.zeros(64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            v, m = torch.var_mean(x, -1, keepdim=True, unbiased=False)
            return (x - m) * torch.rsqrt(v + 1e-5) * self.w + self.b

    r = modelmeter.analyze(LayerNorm(), "4x64")
    c = r.total().cost
    assert (c.bytes_read, c.bytes_written) == (5_696, 4_160)
    # earlier rules: var_mean | sub (its first input is x) | add + rsqrt (add's is the
    # variance, 16 bytes, not sub's 1,024) | mul + mul + add: 4 kernels
    assert len(kernels(fuse(r, OLD))) == 4
    (cost,) = kernels(fuse(r, RULES))
    # one kernel: sub reads the mean (16) on chip and x again (1,024), add the variance
    # (16), rsqrt add's output (16), mul rsqrt's (16) and x - mean (1,024), then the weight
    # and bias ops their producer's (1,024 each): 5,696 - 4,160 = 1,536 read (x, w, b);
    # written 4,160 less var_mean's 32 and the 1,024, 16, 16, 1,024, 1,024 of sub, add,
    # rsqrt and the two muls = 1,024 (the output)
    assert (cost.bytes_read, cost.bytes_written) == (1_536, 1_024)
