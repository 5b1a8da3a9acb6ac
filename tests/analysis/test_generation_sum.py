"""The decode total summed exactly over every context (analysis/generation_sum.py), checked
against a hand derivation and against the roofline evaluated at every context directly.

Toy chip: 100 TFLOP/s bf16 matrix, 1 TB/s, efficiencies 1.0. One "attention" op at context c:
FLOPs 2,000,000·c (MACs 1,000,000·c), bytes 10,000,000 + 10,000·c, so
compute_s = 2e6·c / 1e14 = 2e-8·c and memory_s = (1e7 + 1e4·c) / 1e12 = 1e-5 + 1e-8·c;
they cross at c* = 1e-5 / 1e-8 = 1000: memory-bound below, compute-bound from 1000 on.
"""

from __future__ import annotations

import pytest

from modelmeter.analysis.generation import OpCurves, interpolated_sum, samples
from modelmeter.analysis.generation_sum import exact_sum, signature
from modelmeter.analysis.generation_time import generation_timing
from modelmeter.analysis.polynomial import Polynomial
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpec
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report


def toy(**kw: object) -> HardwareSpec:
    base: dict[str, object] = dict(
        name="toy", display_name="Toy", vendor="-", kind="gpu", bandwidth=1e12,
        compute={"bfloat16": 100e12}, vector={"float32": 10e12}, kernel_overhead=0.0,
        verified=True,
    )  # fmt: skip
    base.update(kw)
    return HardwareSpec(**base)  # type: ignore[arg-type]


def _p(a: int, b: int = 0) -> Polynomial:
    return Polynomial((a, b), "c")


def curves(*, weights: bool = False) -> OpCurves:
    """The attention op above (at c = 0 in the template), optionally then a constant 'weights'
    op: 1e6 MACs, 5,000,000 bytes read (5 us at 1 TB/s, memory-bound at every context)."""
    ops = [OpRecord("aten.bmm", Cost(0, 0, 10_000_000, 0, 0), dtype="bfloat16")]
    polys = [_p(0, 1_000_000), _p(0, 2_000_000), _p(10_000_000, 10_000), _p(0), _p(0)]
    if weights:
        ops.append(OpRecord("aten.mm", Cost(1_000_000, 2_000_000, 5_000_000, 0, 5_000_000),
                            dtype="bfloat16"))  # fmt: skip
        polys += [_p(1_000_000), _p(2_000_000), _p(5_000_000), _p(0), _p(5_000_000)]
    root = ModuleNode("", "Fn", calls=1, ops=ops)
    report = Report("toy", "torch", "exact", "meta", [InputSpec((1, 1), "int64")], root)
    out = OpCurves()
    out.add(0, report, polys)
    return out


def direct(ops: OpCurves, spec: HardwareSpec, lo: int, hi: int) -> float:
    return sum(roofline(ops.report_at(c), spec).latency_s for c in range(lo, hi + 1))


def test_hand_derived_sum_across_the_crossing() -> None:
    # contexts 985 .. 1014: memory-bound at 985 .. 999 (15 contexts),
    #   15 x 1e-5 + 1e-8 x (985 + ... + 999 = 14,880) = 1.5e-4 + 1.488e-4 = 2.988e-4 s;
    # compute-bound at 1000 .. 1014 (15 contexts), 2e-8 x (1000 + ... + 1014 = 15,105)
    #   = 3.021e-4 s; total 6.009e-4 s (no overhead on this chip).
    ops, spec = curves(), toy()
    bounds = [roofline(ops.report_at(c), spec).ops[0].bound for c in (999, 1000)]
    assert bounds == ["memory", "compute"]
    t = generation_timing(ops.templates[0], ops, spec, batch=1, prompt=985, new=30, most=3)
    assert t.decode_total_s == pytest.approx(6.009e-4, rel=1e-12)
    # the same as the roofline at every one of the 30 contexts (to float rounding)
    assert t.decode_total_s == pytest.approx(direct(ops, spec, 985, 1014), rel=1e-12)
    assert len(t.evaluated) < 30 and t.exact and not t.every_context
    assert t.decode_mean_s == pytest.approx(6.009e-4 / 30, rel=1e-12)
    # the former figure, linear between the 3 samples, missed the kink at the crossing
    xs = samples(985, 1014, (), 3)
    old = interpolated_sum(xs, [roofline(ops.report_at(c), spec).latency_s for c in xs])
    assert old != pytest.approx(6.009e-4, rel=1e-6)


def test_queue_waits_switch_inside_the_range() -> None:
    # GPU launches overlap execution; a host issue time of 22 us per op. The attention op
    # (busy 1e-5 + 1e-8·c below 1000, 2e-8·c above) is issued at 22 us and ends at
    # 22 us + busy; the weights op is issued at 44 us and waits 44 - 22 - busy(c) while
    # busy(c) < 22 us, i.e. c < 1100 (compute 2e-8·c = 22e-6): the wait stops inside
    # 1050 .. 1149. Total T(c) = max(44 us, 22 us + busy(c)) + 5 us.
    ops, spec = curves(weights=True), toy(kernel_overhead=22e-6)
    sigs = {signature(roofline(ops.report_at(c), spec)) for c in (1050, 1149)}
    assert len(sigs) == 2
    lo, hi = 1050, 1149
    # by hand: 1050 .. 1099 (50): 49 us each = 2.45e-3; 1100 .. 1149 (50): 27 us + 2e-8·c,
    # 50 x 27e-6 + 2e-8 x (1100 + ... + 1149 = 56,225) = 1.35e-3 + 1.1245e-3 = 2.4745e-3;
    # total 4.9245e-3 s
    got = exact_sum(lambda c: roofline(ops.report_at(c), spec), [lo, hi])
    assert got.total == pytest.approx(4.9245e-3, rel=1e-12)
    assert got.total == pytest.approx(direct(ops, spec, lo, hi), rel=1e-12)
    assert len(got.seen) < 100


def test_in_series_chip_with_overheads() -> None:
    # launches in series (a CPU-like chip): overhead 3 us per op, constant in c, so the
    # total is the sum above plus 2 ops x 3 us x 30 contexts
    ops = curves(weights=True)
    spec = toy(kernel_overhead=3e-6, overlap=False)
    got = exact_sum(lambda c: roofline(ops.report_at(c), spec), [985, 1000, 1014])
    # 6.009e-4 (attention) + 30 x 5e-6 (weights) + 30 x 2 x 3e-6 = 6.009e-4 + 1.5e-4 + 1.8e-4
    assert got.total == pytest.approx(9.309e-4, rel=1e-12)
    assert got.total == pytest.approx(direct(ops, spec, 985, 1014), rel=1e-12)


def test_every_context_when_counts_decrease() -> None:
    # a count that decreases with c: the wait indicators are not known to be monotone, so
    # every context between the seeds is evaluated
    seen: list[int] = []
    ops, spec = curves(), toy()

    def evaluate(c: int):  # noqa: ANN202
        seen.append(c)
        return roofline(ops.report_at(c), spec)

    exact_sum(evaluate, [0, 9], monotone=lambda c: False)
    assert sorted(seen) == list(range(10))
