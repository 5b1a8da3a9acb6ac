"""Fusion by data flow: records that carry their tensors' storage ids (``reads``, ``writes``)
fuse only producer and consumer, and keep the write of an intermediate that an op after the
kernel reads; without ids the rules fall back to byte sizes (the old figures). Bytes by hand.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelmeter.analysis.fusion import RULES, fuse, fusion_plan
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report


def rec(op: str, cost: Cost, shapes: tuple[tuple[int, ...], ...], reads: tuple[int, ...],
        writes: tuple[int, ...], seq: int) -> OpRecord:  # fmt: skip
    return OpRecord(op, cost, shapes=shapes, seq=seq, reads=reads, writes=writes)


def report(ops: list[OpRecord]) -> Report:
    root = ModuleNode("", "Block", 0, 1, ops=ops)
    return Report("block", "torch", "exact", "meta", [InputSpec((1, 64), "float32")], root)


def stripped(r: Report) -> Report:
    """``r`` as loaded from JSON: no storage ids."""
    ops = [replace(o, reads=(), writes=()) for o in r.root.ops]
    return replace(r, root=replace(r.root, ops=ops))


def kernels(r: Report) -> list[Cost]:
    return [o.cost for n in r.modules() for o in n.ops]


def residual() -> Report:
    """float32 rows of 64 (256 bytes each); storages: a 1, b 2, c 3, d 4, e 5, f 6 (the
    weight W, 64x64 = 16,384 bytes, has id 0):

    0 add  c = a + b:   read 512, written 256
    1 relu d = relu(c): read 256, written 256
    2 mm   e = d @ W:   read 256 + 16,384 = 16,640 (weight 16,384), written 256
    3 add  f = c + e:   read 512, written 256 (c: the residual, read again after the mm)
    """
    row = (1, 64)
    return report([
        rec("aten.add", Cost(0, 64, 512, 256), (row, row), (1, 2), (3,), 0),
        rec("aten.relu", Cost(0, 64, 256, 256), (row,), (3,), (4,), 1),
        rec("aten.mm", Cost(4_096, 8_192, 16_640, 256, 16_384), (row, (64, 64)), (4, 0), (5,), 2),
        rec("aten.add", Cost(0, 64, 512, 256), (row, row), (3, 5), (6,), 3),
    ])  # fmt: skip


def test_an_intermediate_read_after_its_kernel_is_still_written() -> None:
    first, second = kernels(fuse(residual()))
    # add + relu: c is read by relu on chip (256 less read) but the final add reads it
    # after the mm, so its write stays: read 512 + 256 - 256 = 512, written 256 + 256 = 512
    assert (first.bytes_read, first.bytes_written) == (512, 512)
    # mm + add (the add reads e, the mm's output, as its largest input): read 16,640 + 512
    # - 256 (e on chip) = 16,896, written 256 + 256 - 256 (e) = 256
    assert (second.bytes_read, second.bytes_written) == (16_896, 256)
    assert fusion_plan(residual()).spills == (0,)  # op 0's output reaches memory


def test_without_ids_the_size_rules_give_the_old_figures() -> None:
    # the same kernels (the final add's first input, c, is as large as the mm's output), but
    # c is taken to have no reader outside add + relu: written 256 + 256 - 256 = 256
    first, second = kernels(fuse(stripped(residual())))
    assert (first.bytes_read, first.bytes_written) == (512, 256)
    assert (second.bytes_read, second.bytes_written) == (16_896, 256)
    assert fusion_plan(stripped(residual())).spills == ()


def test_the_plan_replays_the_kept_writes_on_a_report_without_ids() -> None:
    plan = fusion_plan(residual())
    assert kernels(plan.apply(stripped(residual()))) == kernels(fuse(residual()))


def siblings() -> Report:
    """exp of a (storage 1) and sin of c (storage 3), 256 bytes each, unrelated:

    0 exp b = exp(a): read 256, written 256
    1 sin d = sin(c): read 256, written 256
    """
    row = (1, 64)
    return report([
        rec("aten.exp", Cost(0, 64, 256, 256), (row,), (1,), (2,), 0),
        rec("aten.sin", Cost(0, 64, 256, 256), (row,), (3,), (4,), 1),
    ])  # fmt: skip


def test_equal_sizes_without_data_flow_do_not_fuse() -> None:
    # sin does not read exp's output: two kernels, read 256 + 256, written 256 + 256
    assert kernels(fuse(siblings())) == [Cost(0, 64, 256, 256), Cost(0, 64, 256, 256)]
    # by size (no ids) sin's input is as large as exp's output: one kernel reading
    # 256 + 256 - 256 = 256 and writing 256 + 256 - 256 = 256 (the old, wrong, figure)
    assert kernels(fuse(stripped(siblings()))) == [Cost(0, 128, 256, 256)]


def test_an_in_place_op_replaces_the_value_it_reads() -> None:
    """0 add c = a + b (read 512, written 256); 1 relu_ on c in place (read 256, written 256:
    storage 3 again); 2 mm reads c: the relu's value, not the add's."""
    row = (1, 64)
    r = report([
        rec("aten.add", Cost(0, 64, 512, 256), (row, row), (1, 2), (3,), 0),
        rec("aten.relu_", Cost(0, 64, 256, 256), (row,), (3,), (3,), 1),
        rec("aten.mm", Cost(4_096, 8_192, 16_640, 256, 16_384), (row, (64, 64)), (3, 0), (5,), 2),
    ])  # fmt: skip
    first, _ = kernels(fuse(r))
    # the add's write is dropped: read 512 + 256 - 256 = 512, written 256 + 256 - 256 = 256
    assert (first.bytes_read, first.bytes_written) == (512, 256)


def test_reduction_joins_only_reads_of_its_result() -> None:
    """0 mean m = mean(x) over 2 rows of 64 (read 512, written 8); 1 add y + 1 of another
    2x1 tensor y (storage 9; read 8, written 8): as large as the mean's result, not it."""
    r = report([
        rec("aten.mean", Cost(0, 128, 512, 8), ((2, 64),), (1,), (2,), 0),
        rec("aten.add", Cost(0, 2, 8, 8), ((2, 1),), (9,), (3,), 1),
    ])  # fmt: skip
    assert len(kernels(fuse(r, RULES))) == 2
    # by size: one kernel, read 512 + 8 - 8 = 512, written 8 + 8 - 8 = 8
    assert kernels(fuse(stripped(r), RULES)) == [Cost(0, 130, 512, 8)]


def test_ids_are_not_serialised() -> None:
    op = residual().root.ops[0]
    assert "reads" not in op.to_dict() and "writes" not in op.to_dict()
    back = OpRecord.from_dict(op.to_dict())
    assert back == op and (back.reads, back.writes) == ((), ())


def test_the_builder_fills_the_ids() -> None:
    """A Linear, a view and a ReLU: the ReLU reads (through the view, the same storage) what
    the Linear wrote; the weight and bias read as 0."""
    torch = pytest.importorskip("torch")
    import modelmeter

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.fc(x).view(2, 2, 8)) + x.view(2, 2, 8)

    ops = sorted((o for n in modelmeter.analyze(Net(), "4x8").modules() for o in n.ops),
                 key=lambda o: o.seq)  # fmt: skip
    linear, relu, add = ops
    (x,) = [s for s in linear.reads if s]  # addmm(bias, x, weight^T): bias and weight read 0
    assert linear.reads.count(0) == 2
    assert relu.reads == linear.writes and add.reads == (relu.writes[0], x)


def test_squeeze_and_excitation_keeps_the_activation_it_multiplies() -> None:
    """a = relu(x + 1), s = mean(a) per row, t = sigmoid(s @ W), a * t over x 4x64 float32
    (1,024 bytes; a row statistic 4 x 4 = 16 bytes; W 1x1, 4 bytes), as a squeeze-and-
    excitation block runs: add r 1,024 w 1,024 | relu r 1,024 w 1,024 | mean r 1,024 w 16 |
    mm r 16 + 4 w 16 | sigmoid r 16 w 16 | mul r 1,024 + 16 w 1,024."""
    torch = pytest.importorskip("torch")
    import modelmeter

    class SE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.relu(x + 1)
            return a * torch.sigmoid(a.mean(-1, keepdim=True) @ self.w)

    r = modelmeter.analyze(SE(), "4x64")
    first, second, third = kernels(fuse(r, RULES))
    # add + relu + mean: x read once (1,024); the add's output stays on chip, the relu's is
    # read on chip by the mean but also by the mul after the mm: written 1,024 + 16 = 1,040
    assert (first.bytes_read, first.bytes_written) == (1_024, 1_040)
    assert (second.bytes_read, second.bytes_written) == (20, 16)  # mm + sigmoid
    assert (third.bytes_read, third.bytes_written) == (1_040, 1_024)  # the mul: a and t
    # by sizes (no ids) the relu's write was dropped: 16 written
    assert kernels(fuse(stripped_tree(r), RULES))[0].bytes_written == 16


def stripped_tree(r: Report) -> Report:
    def strip(node: ModuleNode) -> ModuleNode:
        return replace(node, ops=[replace(o, reads=(), writes=()) for o in node.ops],
                       children=[strip(c) for c in node.children])  # fmt: skip

    return replace(r, root=strip(r.root))


def rotary(neg_reads: int) -> Report:
    """q * cos + rotate_half(q) * sin as in tests/analysis/test_fusion_rules.py (q 1x4x2x16
    float32, 512 bytes; cos, sin 128), with storages q 1, cos 2, sin 3, q * cos 4, -x2 5,
    cat 6, that * sin 7, output 8; the neg reads storage ``neg_reads``:

    0 mul q * cos r 640 w 512 | 1 neg r 256 w 256 | 2 cat r 512 w 512 |
    3 mul that * sin r 640 w 512 | 4 add r 1,024 w 512: read 3,072, written 2,304
    """
    q, half, c = (1, 4, 2, 16), (1, 4, 2, 8), (1, 1, 2, 16)
    return report([
        rec("aten.mul", Cost(0, 128, 640, 512), (q, c), (1, 2), (4,), 0),
        rec("aten.neg", Cost(0, 64, 256, 256), (half,), (neg_reads,), (5,), 1),
        rec("aten.cat", Cost(0, 0, 512, 512), (half, half), (5, neg_reads), (6,), 2),
        rec("aten.mul", Cost(0, 128, 640, 512), (q, c), (6, 3), (7,), 3),
        rec("aten.add", Cost(0, 128, 1_024, 512), (q, q), (4, 7), (8,), 4),
    ])  # fmt: skip


def test_rotary_follows_the_halves_of_the_tensor_it_rotates() -> None:
    # the neg reads half of q (storage 1, a view): one kernel, read 3,072 - 2,304 = 768 (q,
    # cos, sin), written 512 (the output), as by sizes
    assert [(k.bytes_read, k.bytes_written) for k in kernels(fuse(rotary(1)))] == [(768, 512)]
    # the neg reads half of another tensor (storage 9) of q's size: the pattern does not
    # start at the neg (by sizes it would): q * cos | neg | cat + mul + add
    assert len(kernels(fuse(rotary(9)))) == 3
    assert len(kernels(fuse(stripped(rotary(9))))) == 1
