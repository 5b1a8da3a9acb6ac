"""Reductions, scans and sorts on a (3, 4) fp32 input (48 B) unless stated."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from modelmeter.report import Cost

# (function, expected FLOPs, derivation)
CASES: list[tuple[str, Callable[[torch.Tensor], object], int]] = [
    # 3 outputs of n = 4: n - 1 = 3 adds each -> 9
    ("sum_dim", lambda x: x.sum(1), 9),
    # 1 output of 12: 11
    ("sum_all", lambda x: x.sum(), 11),
    # mean: (n - 1) + 1 divide = n = 4 per output -> 12
    ("mean", lambda x: x.mean(1), 12),
    # var: 4n = 16 per output -> 48 ; std: 4n + 1 = 17 -> 51
    ("var", lambda x: x.var(1), 48),
    ("std", lambda x: x.std(1, unbiased=False), 51),
    ("var_mean", lambda x: torch.var_mean(x, 1), 48),
    ("std_mean", lambda x: torch.std_mean(x, 0), 4 * (4 * 3 + 1)),  # 4 outputs of n = 3: 52
    # max/min/amax/argmax: n - 1 compares per output
    ("amax", lambda x: x.amax(1), 9),
    ("max_dim", lambda x: x.max(1), 9),
    ("max_all", lambda x: x.max(), 11),
    ("min_dim0", lambda x: x.min(0), 4 * 2),  # 4 outputs of n = 3
    ("argmax", lambda x: x.argmax(1), 9),
    ("argmin_all", lambda x: x.argmin(), 11),
    # aminmax: 2(n - 1) = 6 per output -> 18
    ("aminmax", lambda x: torch.aminmax(x, dim=1), 18),
    ("prod", lambda x: x.prod(1), 9),
    # 2-norm: square n + sum n-1 + sqrt 1 = 2n = 8 per output -> 24 ; 1-norm 2n - 1 = 7 -> 21
    ("norm2", lambda x: x.norm(dim=1), 24),
    ("norm1", lambda x: x.norm(p=1, dim=1), 21),
    ("norm_inf", lambda x: torch.linalg.vector_norm(x, float("inf"), dim=1), 21),
    ("norm3", lambda x: torch.linalg.vector_norm(x, 3, dim=1), 36),  # 3n = 12 -> 36
    ("norm_all", lambda x: x.norm(), 24),  # one output of 12: 2*12 = 24
    # logsumexp: max n-1, sub n, exp n, sum n-1, log 1, add 1 = 4n = 16 -> 48
    ("logsumexp", lambda x: x.logsumexp(1), 48),
    # count_nonzero: n compares + n - 1 adds = 7 -> 21 ; nansum: 2n - 1 = 7 -> 21
    ("count_nonzero", lambda x: torch.count_nonzero(x, 1), 21),
    ("nansum", lambda x: torch.nansum(x, 1), 21),
    # scans: 3 rows of n = 4: 3 each -> 9 ; logcumsumexp 3n - 1 = 11 per row -> 33
    ("cumsum", lambda x: x.cumsum(1), 9),
    ("cumprod", lambda x: x.cumprod(0), 4 * 2),  # 4 rows of 3
    ("cummax", lambda x: torch.cummax(x, 1), 9),
    ("logcumsumexp", lambda x: torch.logcumsumexp(x, 1), 33),
    # sort: n*ceil(log2 n) = 4*2 = 8 per row -> 24 ; median/kthvalue counted as a sort
    ("sort", lambda x: x.sort(1), 24),
    ("argsort", lambda x: x.argsort(1), 24),
    ("median_dim", lambda x: x.median(1), 24),
    ("kthvalue", lambda x: x.kthvalue(2, 1), 24),
    ("median_all", lambda x: x.median(), 12 * 4),  # 12 * ceil(log2 12) = 12*4 = 48
    # topk(k=2): n*ceil(log2(k+1)) = 4*2 = 8 per row -> 24 ; k = 1: 4*1 = 4 per row -> 12
    ("topk2", lambda x: x.topk(2, 1), 24),
    ("topk1", lambda x: x.topk(1, 1), 12),
]


@pytest.mark.parametrize(("name", "fn", "flops"), CASES, ids=[c[0] for c in CASES])
def test_reductions(kit, name: str, fn: Callable, flops: int) -> None:  # noqa: ANN001
    r = kit.run(fn, "3x4")
    assert len(r.by_operator()) == 1, kit.ops(r)
    assert r.total().cost.flops == flops
    assert r.total().cost.macs == 0


def test_any_all_on_comparison(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: (x > 0).any(1), "3x4")
    # gt 12 + any: 3 outputs of n = 4: 3*3 = 9 -> 21
    assert r.total().cost.flops == 21
    # reads x 48 + bool 12 = 60 ; writes bool (3,4) 12 + bool (3,) 3 = 15
    assert (r.total().cost.bytes_read, r.total().cost.bytes_written) == (60, 15)
    assert kit.run(lambda x: (x > 0).all(), "3x4").total().cost.flops == 12 + 11


def test_sum_bytes_and_keepdim(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: x.sum(1, keepdim=True), "3x4")
    # 9 adds; reads 48 B; writes (3,1) 12 B
    assert r.total().cost == Cost(0, 9, 48, 12, 0)


def test_max_dim_writes_values_and_indices(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: x.max(1), "3x4")
    # values (3,) fp32 12 B + indices (3,) int64 24 B = 36
    assert r.total().cost.bytes_written == 36


def test_binary_max_overload_is_elementwise(kit) -> None:  # noqa: ANN001
    a, b = kit.t(3, 4), kit.t(3, 4)
    # max(a, b): 1 compare per output element = 12 (not a reduction: 12 - 12 = 0)
    assert kit.cost("max", {"self": a, "other": b}, kit.t(3, 4)).flops == 12


def test_empty_reduction_is_free(kit) -> None:  # noqa: ANN001
    assert kit.cost("sum", {"self": kit.t(0, 4), "dim": [0]}, kit.t(4)).flops == 0


def test_onnx_reductions(kit) -> None:  # noqa: ANN001
    x = kit.t(2, 10)
    # ReduceL2 over axis 1: 2 outputs * 2n = 2*20 = 40 ; ReduceL1: 2*(2n - 1) = 38
    assert kit.cost("ReduceL2", {"data": x}, kit.t(2, 1), frontend="onnx").flops == 40
    assert kit.cost("ReduceL1", {"data": x}, kit.t(2, 1), frontend="onnx").flops == 38
    # TopK with k as an input tensor: k read off the output, 3 -> ceil(log2 4) = 2: 2*10*2 = 40
    args = {"X": x, "K": kit.t(1, dtype="int64")}
    out = (kit.t(2, 3), kit.t(2, 3, dtype="int64"))
    assert kit.cost("TopK", args, out, frontend="onnx").flops == 40


# Found in review: reductions, scans and sorts: msort's dimension, mode, complex sums, binary
# searches (searchsorted/bucketize), histc, direct cdist and the CTC loss.


def test_msort_sorts_along_dim_0(kit) -> None:  # noqa: ANN001
    x = kit.t(8, 3)
    # msort sorts each of the 3 columns of n = 8: 8*ceil(log2 8) = 24 compares each -> 72
    # (not 8 rows of 3: 8*3*2 = 48)
    c = kit.cost("msort", {"self": x}, kit.t(8, 3))
    assert c.flops == 72


def test_mode_sorts_and_counts_runs(kit) -> None:  # noqa: ANN001
    # mode over rows of n = 10: sort 10*ceil(log2 10) = 40 + runs n - 1 = 9 -> 49 per row,
    # 4 rows -> 196
    for mode in ("meta", "real"):
        r = kit.run(lambda x: torch.mode(x, 1), "4x10", mode=mode)
        assert r.total().cost.flops == 196


def test_complex_sum_mean_cumsum(kit) -> None:  # noqa: ANN001
    z = kit.t(3, 4, dtype="complex64")
    # sum of 4 complex values: 3 complex adds = 6 real adds per output, 3 outputs -> 18
    c = kit.cost("sum", {"self": z, "dim": [1]}, kit.t(3, dtype="complex64"))
    assert c.flops == 18
    # mean: 2*(n - 1) adds + 2 divides = 2n = 8 per output -> 24
    assert kit.cost("mean", {"self": z, "dim": [1]}, kit.t(3, dtype="complex64")).flops == 24
    # cumsum along rows of 4: 3 complex adds = 6 per row, 3 rows -> 18 ;
    # cumprod: 3 complex multiplies of 6 -> 54
    assert kit.cost("cumsum", {"self": z, "dim": 1}, z).flops == 18
    assert kit.cost("cumprod", {"self": z, "dim": 1}, z).flops == 54


def test_searchsorted_and_bucketize(kit) -> None:  # noqa: ANN001
    # 3 rows of n = 5 sorted boundaries, 4 values each: ceil(log2(5 + 1)) = 3 compares per
    # value -> 12 values * 3 = 36 ; reads 60 + 48, writes 12 int64 = 96
    for mode in ("meta", "real"):
        r = kit.run(lambda s, v: torch.searchsorted(s, v), "3x5", "3x4", mode=mode)
        assert r.total().cost == Cost(0, 36, 108, 96, 0)
    # bucketize 10 values into 7 boundaries: ceil(log2 8) = 3 each -> 30
    c = kit.cost("bucketize", {"self": kit.t(10), "boundaries": kit.t(7)}, kit.t(10, dtype="int64"))
    assert c.flops == 30


def test_histc(kit) -> None:  # noqa: ANN001
    # 100 elements with a given range: 7 per element -> 700
    r = kit.run(lambda x: torch.histc(x, bins=10, min=0, max=1), "100", mode="real")
    assert r.total().cost.flops == 700
    # range from the data (min == max == 0): + min and max, 2*(100 - 1) = 198 -> 898
    r = kit.run(lambda x: torch.histc(x, bins=10), "100", mode="real")
    assert r.total().cost.flops == 898


def test_direct_cdist(kit) -> None:  # noqa: ANN001
    # x1 (2, 5, 8), x2 (2, 7, 8) -> (2, 5, 7) = 70 distances over M = 8 coordinates
    for mode in ("meta", "real"):
        # p = 2: subtract 8, square 8, sum 7, sqrt 1 = 3M = 24 -> 1680
        r = kit.run(lambda a, b: torch.cdist(a, b), "2x5x8", "2x7x8", mode=mode)
        assert r.by_operator()["aten._cdist_forward"].cost.flops == 1680
        # p = 1: subtract, abs, sum = 3M - 1 = 23 -> 1610
        r = kit.run(lambda a, b: torch.cdist(a, b, p=1), "2x5x8", "2x7x8", mode=mode)
        assert r.total().cost.flops == 1610
    # p = 3: subtract, abs, pow, sum, root = 4M = 32 -> 2240
    r = kit.run(lambda a, b: torch.cdist(a, b, p=3), "2x5x8", "2x7x8")
    assert r.total().cost.flops == 2240


def test_ctc_loss_alpha_recursion(kit) -> None:  # noqa: ANN001
    def ctc(lp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.ctc_loss(lp, t + 1, [20, 15], [6, 4], reduction="none")

    r = kit.run(ctc, "20x2x5", "2x6:int64", mode="real")
    # sequence 0: T = 20, L = 6: 19 steps * 13 states * 14 + 9 = 3467 ;
    # sequence 1: T = 15, L = 4: 14 * 9 * 14 + 9 = 1773 -> 5240
    assert r.by_operator()["aten._ctc_loss"].cost.flops == 5240
