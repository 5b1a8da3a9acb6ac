"""Einsum: torch.einsum decomposes (bmm, mul, sum, views) before the tracer; its totals equal
the hand count of the contractions executed. The one-op formula (ONNX Einsum) follows the
same left-to-right plan and gives the same numbers."""

from __future__ import annotations

import pytest
import torch

import modelmeter
from modelmeter.ops.einsum import parse_equation
from modelmeter.registry import Formula, OpCall, TensorMeta, lookup

CASES = [
    # (equation, shapes, MACs, exact FLOPs)
    # (3,4)@(4,5): MACs 3*4*5 = 60; FLOPs (2*4-1)*15 = 105
    ("ij,jk->ik", ["3x4", "4x5"], 60, 105),
    # attention scores: MACs 2*3*4*6*5 = 720; FLOPs (2*5-1)*(2*3*4*6) = 1296
    ("bhqd,bhkd->bhqk", ["2x3x4x5", "2x3x6x5"], 720, 1296),
    # three operands, left to right: ij,jk -> ik (60 MACs, 105), ik,kl -> il:
    # 3*5*6 = 90 MACs, (2*5-1)*18 = 162 -> 150 MACs, 267 FLOPs
    ("ij,jk,kl->il", ["3x4", "4x5", "5x6"], 150, 267),
    # four operands: + im from il,lm: 3*6*2 = 36 MACs, (2*6-1)*6 = 66 -> 186, 333
    ("ij,jk,kl,lm->im", ["3x4", "4x5", "5x6", "6x2"], 186, 333),
    # full contraction (a dot product of 12): MACs 12, FLOPs 2*12 - 1 = 23
    ("ij,ij->", ["3x4", "3x4"], 12, 23),
    # i summed first (used by one operand only): (3-1)*(2*4) = 16 adds, then bj,jk->bk:
    # MACs 2*4*5 = 40, FLOPs (2*4-1)*10 = 70 -> 40 MACs, 86 FLOPs
    ("bij,jk->bk", ["2x3x4", "4x5"], 40, 86),
    # outer product: 12 multiplies, no MACs
    ("i,j->ij", ["3", "4"], 0, 12),
    # Hadamard product: 12 multiplies
    ("ij,ij->ij", ["3x4", "3x4"], 0, 12),
    # batched matmul with ellipsis: MACs 2*3*4*5 = 120, FLOPs (2*4-1)*30 = 210
    ("...ij,...jk->...ik", ["2x3x4", "2x4x5"], 120, 210),
    # implicit output "ik": same as the first case
    ("ij,jk", ["3x4", "4x5"], 60, 105),
    # a sum over everything: 11 adds
    ("ij->", ["3x4"], 0, 11),
    # diagonal is a view: no FLOPs
    ("ii->i", ["3x3"], 0, 0),
]


@pytest.mark.parametrize(("eq", "shapes", "macs", "flops"), CASES)
def test_traced_einsum(eq: str, shapes: list[str], macs: int, flops: int) -> None:
    r = modelmeter.analyze(lambda *xs: torch.einsum(eq, *xs), shapes)
    assert not r.unsupported, r.unsupported
    assert "aten.einsum" not in r.by_operator()  # composite: decomposed before the tracer
    c = r.total().cost
    assert (c.macs, c.flops) == (macs, flops)


@pytest.mark.parametrize(("eq", "shapes", "macs", "flops"), CASES)
def test_einsum_formula_matches_trace(eq: str, shapes: list[str], macs: int, flops: int) -> None:
    metas = tuple(TensorMeta(tuple(int(d) for d in s.split("x"))) for s in shapes)
    formula = lookup("onnx", "Einsum")
    assert isinstance(formula, Formula)
    work = formula(OpCall("Einsum", {"equation": eq}, metas, (TensorMeta((1,)),)))
    assert (work.macs, work.flops) == (macs, flops)


def test_einsum_2mac() -> None:
    r = modelmeter.analyze(
        lambda a, b: torch.einsum("ij,jk->ik", a, b), ["3x4", "4x5"], convention="2mac"
    )
    assert r.total().cost.flops == 2 * 60


def test_parse_equation_broadcast_and_ellipsis() -> None:
    terms, out, sizes = parse_equation("...ij,jk->...ik", [(2, 1, 3, 4), (4, 5)])
    assert len(terms[0]) == 4 and terms[1] == "jk" and len(out) == 4
    assert sizes["i"] == 3 and sizes["k"] == 5
    # broadcast: a size-1 label takes the other operand's size
    _, _, sizes = parse_equation("bij,bjk->bik", [(1, 3, 4), (6, 4, 5)])
    assert sizes["b"] == 6
