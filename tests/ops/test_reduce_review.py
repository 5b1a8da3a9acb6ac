"""Review of reductions, scans and sorts: msort's dimension, mode, complex sums, binary
searches (searchsorted/bucketize), histc, direct cdist and the CTC loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from modelmeter.report import Cost


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
