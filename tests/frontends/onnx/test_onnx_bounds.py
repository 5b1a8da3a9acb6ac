"""Tiny ONNX graphs that ask for unbounded work: nested Loops with large trip counts, a Scan
over a huge axis, constants of 10^8 elements built by ConstantOfShape / Range / Tile / Expand
or broadcasting. Each ends in a report that says what was not counted, within a few seconds
and a bounded amount of memory (measured here with tracemalloc)."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx_graphs import analyze, model, vi  # noqa: E402

from modelmeter.frontends.onnx.control import MAX_REPEATED_EVENTS  # noqa: E402

node = helper.make_node
I64, BOOL = TensorProto.INT64, TensorProto.BOOL
SECONDS = 10  # generous on a loaded 2-core machine; each case takes well under 1 s alone
PEAK_BYTES = 64 << 20


def _bounded(m: onnx.ModelProto):  # noqa: ANN202
    """Analyse ``m``; fail when it takes longer than SECONDS or allocates PEAK_BYTES."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        report = analyze(m)
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < SECONDS, f"took {seconds:.1f} s"
    assert peak < PEAK_BYTES, f"allocated {peak / 2**20:.0f} MiB"
    return report


def _const(name: str, value: object) -> onnx.NodeProto:
    arr = np.array(value, dtype=np.int64)
    return node("Constant", [], [name], value=numpy_helper.from_array(arr, name + "_value"))


def _nested_loops(trips: list[int]) -> onnx.ModelProto:
    """Loops nested len(trips) deep, outermost first, around one Relu on a 2x4 state."""
    depth = len(trips)
    inner = [node("Relu", [f"s{depth}"], [f"t{depth}"])]
    for d in range(depth, 0, -1):
        body = helper.make_graph(
            [*inner, node("Identity", [f"c{d}"], [f"k{d}"])],
            f"body{d}",
            [vi(f"i{d}", [], I64), vi(f"c{d}", [], BOOL), vi(f"s{d}", [2, 4])],
            [vi(f"k{d}", [], BOOL), vi(f"t{d}", [2, 4])],
        )
        outer_in, outer_out = (f"s{d - 1}", f"t{d - 1}") if d > 1 else ("x", "y")
        inner = [
            _const(f"M{d}", trips[d - 1]),
            node("Constant", [], [f"C{d}"], value=helper.make_tensor(f"C{d}v", BOOL, [], [1])),
            node("Loop", [f"M{d}", f"C{d}", outer_in], [outer_out], body=body, name=f"loop{d}"),
        ]
    return model(inner, [vi("x", [2, 4])], [vi("y", [2, 4])])


def _records(report) -> int:  # noqa: ANN001
    return sum(len(n.ops) for n in report.modules())


def test_nested_loops_within_the_bound_are_counted_in_full() -> None:
    # 20 x 30 trips of one Relu on 8 elements: 600 records, 4,800 FLOPs
    r = _bounded(_nested_loops([20, 30]))
    assert _records(r) == 600 and r.total().cost.flops == 600 * 8
    assert r.unsupported == {}


@pytest.mark.parametrize("trips", [[1000, 1000], [400, 400], [10, 10, 10, 10, 10, 10],
                                   [2**62, 2**62]])
def test_nested_loops_past_the_bound_are_noted_not_unrolled(trips: list[int]) -> None:
    # 1000 x 1000 used to make a million records: 33 s and 3 GB for a 538-byte file
    r = _bounded(_nested_loops(trips))
    assert _records(r) <= MAX_REPEATED_EVENTS
    assert sum(r.unsupported.values()) >= 1 and set(r.unsupported) == {"onnx.Loop"}
    note = next(n for n in r.notes if "not counted" in n)
    assert "modelmeter repeats at most 100,000 op events" in note, note


def test_scan_over_a_huge_axis_is_noted_not_unrolled() -> None:
    body = helper.make_graph(
        [node("Add", ["acc", "row"], ["acc2"]), node("Identity", ["acc2"], ["out"])],
        "body", [vi("acc", [4]), vi("row", [4])], [vi("acc2", [4]), vi("out", [4])],
    )
    m = model(
        [node("Scan", ["a", "x"], ["acc_final", "ys"], body=body, num_scan_inputs=1,
              name="scan")],
        [vi("a", [4]), vi("x", [10**9, 4])], [vi("acc_final", None), vi("ys", None)],
    )
    r = _bounded(m)
    assert r.unsupported == {"onnx.Scan": 1}
    assert any("'scan' not counted" in n and "would run 1000000000 times" in n for n in r.notes)


@pytest.mark.parametrize(
    "nodes",
    [
        # ConstantOfShape of 10^8 elements
        [_const("s", [10**4, 10**4]),
         node("ConstantOfShape", ["s"], ["big"], value=helper.make_tensor("v", I64, [1], [1]))],
        # Tile of one element 10^8 times
        [_const("one", [1]), _const("rep", [10**8]), node("Tile", ["one", "rep"], ["big"])],
        # Expand of one element to 10^4 x 10^4
        [_const("one", [1]), _const("sh", [10**4, 10**4]), node("Expand", ["one", "sh"], ["big"])],
        # broadcasting two 10^4-element vectors into 10^8
        [_const("a", np.ones((10**4, 1))), _const("b", np.ones((1, 10**4))),
         node("Mul", ["a", "b"], ["big"])],
    ],
    ids=["ConstantOfShape", "Tile", "Expand", "broadcast"],
)
def test_huge_constants_are_never_materialised(nodes: list[onnx.NodeProto]) -> None:
    # a large constant is not computed at load (at most 16,384 elements are): its sum,
    # added to the input, is then an ordinary (counted) op on unknown values
    m = model(
        [*nodes, node("ReduceSum", ["big"], ["n"], keepdims=0), node("Add", ["x", "n"], ["y"])],
        [vi("x", [2, 4], I64)], [vi("y", None)],
    )
    r = _bounded(m)
    assert r.total().cost.flops > 0


@pytest.mark.parametrize("size", [10**8, 2**40])
def test_a_huge_range_in_a_shape_computation_is_not_propagated(size: int) -> None:
    # Range(0, size, 1) -> Size -> Add: ONNX's data propagation would compute the size values
    # one by one in C++ (10^8 ran for minutes); past 2^20 of them inference runs without it
    from modelmeter.frontends.onnx.shapes import MAX_PROPAGATED_RANGE, huge_range

    m = model(
        [
            _const("a", 0),
            _const("b", size),
            _const("d", 1),
            node("Range", ["a", "b", "d"], ["r"]),
            node("Size", ["r"], ["n"]),
            node("Add", ["x", "n"], ["y"]),
        ],
        [vi("x", [2, 4], TensorProto.INT64)],
        [vi("y", None)],
    )
    assert size > MAX_PROPAGATED_RANGE and huge_range(m)
    report = _bounded(m)
    assert report.by_operator()["onnx.Add"].calls == 1  # the graph is still counted


def test_a_small_range_keeps_data_propagation() -> None:
    from modelmeter.frontends.onnx.shapes import huge_range

    m = model(
        [_const("a", 0), _const("b", 8), _const("d", 1), node("Range", ["a", "b", "d"], ["y"])],
        [vi("x", [2, 4])],
        [vi("y", None)],
    )
    assert not huge_range(m)
