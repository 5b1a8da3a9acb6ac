"""The diff of two reports (analysis/diff.py): hand-derived deltas on hand-built reports, a
report against itself (any report, through its JSON too) is empty, and the rows add up: the
operator rows' deltas sum to the totals' delta."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from diff_helpers import make_extended
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmeter.analysis.diff import Delta, Figures, Latencies, diff_reports
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, ParamStats, Report


@pytest.fixture
def base(handmade_factory: Callable[[], Report]) -> Callable[[], Report]:
    """A fresh hand-made report per call (tests/conftest.py's make_report)."""
    return handmade_factory


def test_hand_derived_totals_and_rows(base: Callable[[], Report]) -> None:
    d = diff_reports(base(), make_extended(base()))
    t = d.totals
    # params 121 -> 123 (+2: tail); MACs 110 -> 114 (+4); FLOPs 330 - 10 + 8 = 328
    assert (t.params.old, t.params.new, t.params.change) == (121, 123, 2)
    assert (t.macs.change, t.flops.change) == (4, -2)
    assert (t.flops.old, t.flops.new) == (330, 328)
    # bytes read: -40 (relu) + 24 (mm) = -16; written: -40 + 4 = -36; moved -52
    assert (t.bytes_read.change, t.bytes_written.change, t.bytes.change) == (-16, -36, -52)
    # weights (native dtype): 440 + 44 -> + 8 = 492
    assert (t.weights.old, t.weights.new) == (484, 492)
    assert t.latency == Delta() and not t.latency.known
    by = {r.name: r for r in d.modules}
    assert [r.name for r in d.modules] == ["body", "body.0", "body.1", "head", "tail"]
    assert by["tail"].status == "added" and by["tail"].old is None
    assert by["tail"].delta("params").change == 2 and by["tail"].delta("flops").relative is None
    # body.1 lost its relu (flops 10 -> 0: -100%), so body (its parent) changed too
    assert by["body.1"].status == "changed" and by["body.1"].delta("flops").relative == -1.0
    assert by["body"].status == "changed" and by["body"].delta("flops").change == -10
    assert by["body.0"].status == "unchanged" and by["head"].status == "unchanged"
    ops = {r.name: r.status for r in d.operators}
    assert ops == {"aten.relu": "removed", "aten.mm": "added", "aten.addmm": "unchanged",
                   "aten.add": "unchanged"}  # fmt: skip
    assert not d.empty


def test_removed_module_keeps_its_place(base: Callable[[], Report]) -> None:
    old, new = make_extended(base()), base()  # tail removed: placed after head, as it was
    d = diff_reports(old, new)
    assert [(r.name, r.status) for r in d.modules][-2:] == [("head", "unchanged"),
                                                            ("tail", "removed")]  # fmt: skip
    assert d.modules[-1].delta("params").change == -2 and d.modules[-1].new is None


def test_type_change_is_a_change(base: Callable[[], Report]) -> None:
    new = base()
    new.root.children[1].type = "LazyLinear"
    row = {r.name: r for r in diff_reports(base(), new).modules}["head"]
    assert row.status == "changed" and row.type == "Linear -> LazyLinear"


def test_operator_rows_add_up_to_the_totals(base: Callable[[], Report]) -> None:
    d = diff_reports(base(), make_extended(base()))
    summed = sum((r.delta(f) for r in d.operators for f in ["flops"]), Delta(0, 0))
    assert summed == d.totals.flops
    for f in ("macs", "bytes_read", "bytes_written"):
        assert sum((r.delta(f) for r in d.operators), Delta(0, 0)) == d.totals.get(f)
    # Figures add side by side (the old side of an added row is missing, counted as 0)
    assert Figures(1, 2, 3, 4, 5, 6) + Figures(1, 1, 1, 1, 1, 1) == Figures(2, 3, 4, 5, 6, 7)


def test_latency_compared_when_both_sides_have_it(base: Callable[[], Report]) -> None:
    old, new = base(), make_extended(base())
    a = Latencies("l4", 0.002, {"body": 0.001, "head": 0.001})
    b = Latencies("l4", 0.003, {"body": 0.001, "head": 0.001, "tail": 0.001})
    d = diff_reports(old, new, old_latency=a, new_latency=b)
    assert d.totals.latency.change == 0.003 - 0.002 and d.old.chip == "l4"
    by = {r.name: r for r in d.modules}
    assert by["tail"].delta("latency_s") == Delta(None, 0.001)
    assert diff_reports(old, new, old_latency=a).totals.latency == Delta()
    assert "only one side" in diff_reports(old, new, new_latency=b).notes[0]
    c = Latencies("h100", 0.001, {})
    assert "different chips" in diff_reports(old, new, old_latency=a, new_latency=c).notes[0]


def test_notes_say_inputs_and_conventions_differ(base: Callable[[], Report]) -> None:
    new = base()
    new.inputs = [InputSpec((8, 10), "float32")]
    new.convention = "2mac"
    notes = diff_reports(base(), new).notes
    assert any("conventions differ" in n for n in notes)
    assert any("inputs differ: 4x10 float32 -> 8x10 float32" in n for n in notes)


def test_latencies_from_a_saved_report() -> None:
    doc = {"hardware": {"name": "l4"}, "roofline": {"latency_s": 0.5},
           "modules": [{"name": "a", "roofline": {"latency_s": 0.25}}, {"name": "b"}]}  # fmt: skip
    lat = Latencies.from_json(doc)
    assert lat == Latencies("l4", 0.5, {"a": 0.25})
    assert Latencies.from_json({"modules": []}) is None


# ---- any report against itself ------------------------------------------------------------------

OPS = ("aten.mm", "aten.add", "aten.relu", "aten.convolution")
costs = st.builds(Cost, *(st.integers(0, 10**12) for _ in range(5)))


@st.composite
def reports(draw: st.DrawFn) -> Report:
    """A random module tree: each node under an earlier one, with random ops and params."""
    n = draw(st.integers(1, 8))
    nodes: list[ModuleNode] = []
    for i in range(n):
        parent = nodes[draw(st.integers(0, i - 1))] if i else None
        ops = [OpRecord(draw(st.sampled_from(OPS)), draw(costs))
               for _ in range(draw(st.integers(0, 3)))]  # fmt: skip
        p = draw(st.integers(0, 10**9))
        node = ModuleNode(
            "" if parent is None else (f"{parent.name}.m{i}" if parent.name else f"m{i}"),
            draw(st.sampled_from(["Linear", "Conv2d", "Block"])),
            depth=0 if parent is None else parent.depth + 1, calls=1,
            own=ParamStats(params=p, trainable=p, param_bytes=4 * p), ops=ops,
        )  # fmt: skip
        if parent is not None:
            parent.children.append(node)
        nodes.append(node)
    # from_dict rebuilds the tree depth first: keep the nodes in that order
    return Report("m", "torch", "exact", "meta", [InputSpec((1, 4), "float32")], nodes[0],
                  peak_activation_bytes=draw(st.integers(0, 10**9)))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(reports())
def test_a_report_against_itself_is_empty(report: Report) -> None:
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    for other in (report, again):
        d = diff_reports(report, other)
        assert d.empty
        assert all(not d.totals.get(m).changed for m in ("params", "macs", "flops", "bytes"))
        assert all(r.status == "unchanged" for r in (*d.modules, *d.operators))
        assert len(d.modules) == sum(1 for _ in report.modules()) - 1  # the root is the totals


def test_a_name_only_one_side_gives_is_not_a_difference(base: Callable[[], Report]) -> None:
    # PyTorch's positional input has no name, the ONNX export's is named "x": the same
    # 4x10 float32 input. Before, the note read "the inputs differ: 4x10 float32 -> 4x10
    # float32" (the InputSpec objects differed by name only).
    named = base()
    named.inputs = [InputSpec((4, 10), "float32", "x")]
    assert not any("inputs differ" in n for n in diff_reports(base(), named).notes)
    renamed = base()
    renamed.inputs = [InputSpec((4, 10), "float32", "y")]
    notes = diff_reports(named, renamed).notes
    assert any("inputs differ: x=4x10 float32 -> y=4x10 float32" in n for n in notes)
