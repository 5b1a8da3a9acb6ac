"""``_foreach_*`` formulas: the per-tensor formula on each element of the lists, summed; and
the foreach op costs what the for-loop over its elements costs (traced)."""

from __future__ import annotations

import torch

import modelmeter
from modelmeter.report import Cost


def test_foreach_add_list_in_place(kit) -> None:  # noqa: ANN001
    a, b = kit.t(2, 3), kit.t(4)
    ga, gb = kit.t(2, 3), kit.t(4)
    # _foreach_add_([a, b], [ga, gb]): 6 + 4 = 10 adds (alpha 1: 1 FLOP each);
    # reads a, ga (6*4*2 = 48 B) and b, gb (4*4*2 = 32 B) = 80 B; writes a, b: 24 + 16 = 40 B
    c = kit.cost("_foreach_add_", {"self": (a, b), "other": (ga, gb)}, ())
    assert c == Cost(macs=0, flops=10, bytes_read=80, bytes_written=40)
    # alpha = -lr scales the other operand first: 2 FLOPs per element = 20
    c = kit.cost("_foreach_add_", {"self": (a, b), "other": (ga, gb), "alpha": -0.1}, ())
    assert c.flops == 20


def test_foreach_mul_scalar_and_out_of_place_sqrt(kit) -> None:  # noqa: ANN001
    a, b = kit.t(5), kit.t(3, dtype="bfloat16")
    # _foreach_mul_([a, b], 0.9): 5 + 3 = 8 multiplies; reads 5*4 + 3*2 = 26 B, writes 26 B
    c = kit.cost("_foreach_mul_", {"self": (a, b), "scalar": 0.9}, ())
    assert c == Cost(flops=8, bytes_read=26, bytes_written=26)
    # _foreach_sqrt([a, b]) -> two new tensors: 8 square roots; reads 26 B, writes 26 B
    c = kit.cost("_foreach_sqrt", {"self": (a, b)}, (kit.t(5), kit.t(3, dtype="bfloat16")))
    assert c == Cost(flops=8, bytes_read=26, bytes_written=26)


def test_foreach_addcdiv_scalar_list_and_lerp(kit) -> None:  # noqa: ANN001
    p, m, d = kit.t(10), kit.t(10), kit.t(10)
    # addcdiv_(p, m, d, value): a divide and an add, and the scale when value != 1: 3 per
    # element = 30; reads p, m, d = 120 B, writes p = 40 B
    c = kit.cost("_foreach_addcdiv_", {"self": (p,), "tensor1": (m,), "tensor2": (d,),
                                       "scalars": [-0.001]}, ())  # fmt: skip
    assert c == Cost(flops=30, bytes_read=120, bytes_written=40)
    # a scale of exactly 1 is no multiply: 2 per element = 20
    c = kit.cost("_foreach_addcdiv_", {"self": (p,), "tensor1": (m,), "tensor2": (d,),
                                       "scalars": [1.0]}, ())  # fmt: skip
    assert c.flops == 20
    # lerp_(m, g, w) = m + w*(g - m): 3 per element = 30; reads m, g 80 B, writes m 40 B
    g = kit.t(10)
    c = kit.cost("_foreach_lerp_", {"self": (m,), "tensors1": (g,), "weight": 0.1}, ())
    assert c == Cost(flops=30, bytes_read=80, bytes_written=40)


def test_foreach_maximum_uses_maximum_and_copy_moves_bytes(kit) -> None:  # noqa: ANN001
    a, b = kit.t(7), kit.t(7)
    # there is no aten maximum_: _foreach_maximum_ is counted as maximum, 1 per element
    assert kit.cost("_foreach_maximum_", {"self": (a,), "other": (b,)}, ()).flops == 7
    # _foreach_copy_(dst, src): 0 FLOPs, reads src 28 B, writes dst 28 B
    c = kit.cost("_foreach_copy_", {"self": (a,), "src": (b,)}, ())
    assert c == Cost(flops=0, bytes_read=28, bytes_written=28)


def _loop_and_foreach(fn_loop, fn_foreach) -> tuple[Cost, Cost]:  # noqa: ANN001
    shapes = [(4, 3), (4,)]
    ts = [torch.empty(s) for s in shapes]
    us = [torch.empty(s) for s in shapes]
    loop = modelmeter.analyze(lambda *x: fn_loop(x[:2], x[2:]), (*ts, *us), mode="real")
    each = modelmeter.analyze(lambda *x: fn_foreach(x[:2], x[2:]), (*ts, *us), mode="real")
    assert not loop.unsupported and not each.unsupported
    return loop.total().cost, each.total().cost


def test_a_foreach_op_costs_what_its_for_loop_costs() -> None:
    def loop(a, b):  # noqa: ANN001, ANN202
        return [torch.addcdiv(x, x, y, value=0.5) for x, y in zip(a, b, strict=True)]

    def each(a, b):  # noqa: ANN001, ANN202
        return torch._foreach_addcdiv(list(a), list(a), list(b), 0.5)

    c_loop, c_each = _loop_and_foreach(loop, each)
    # 16 elements x 3 FLOPs (divide, scale, add) = 48 both ways
    assert c_loop.flops == c_each.flops == 48
    assert c_loop == c_each
