"""A report's roofline latency and signature alone (analysis/roofline_total.py): by hand on a
toy chip, and equal, float for float, to the full roofline's on real models and chips."""

from __future__ import annotations

import pytest
import torch
from test_generation_sum import curves, toy
from tiny_gpt2 import tiny_gpt2

from modelmeter.analysis.generation_sum import signature
from modelmeter.analysis.roofline import roofline
from modelmeter.analysis.roofline_total import step_time
from modelmeter.hardware import load_spec
from modelmeter.hardware.schema import HardwareSpecError
from modelmeter.usecases.analyze import analyze


def test_hand_derived_queue_wait() -> None:
    # the toy chip of test_generation_sum, 22 us of host time per op, launches overlapped;
    # at c = 1050 the attention op is compute-bound: 2e-8 x 1050 = 21 us against memory
    # (1e7 + 1e4 x 1050) / 1e12 = 20.5 us; it is issued at 22 us and ends at 22 + 21 = 43 us.
    # The weights op (5 us, memory-bound: 2e6 / 1e14 = 0.02 us of compute) is issued at
    # 44 us: the device waits 44 - 43 = 1 us for it and it ends at 49 us. Total 49 us; both
    # ops waited for.
    ops, spec = curves(weights=True), toy(kernel_overhead=22e-6)
    got = step_time(ops.report_at(1050), spec)
    assert got.latency_s == pytest.approx(49e-6, rel=1e-12)
    assert got.signature == ((True, True), (False, True))
    assert signature(got) == got.signature


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    name = tiny_gpt2(tmp_path_factory.mktemp("tiny"))
    return {
        "forward": analyze(name, "2x16:int64"),
        "step": analyze(name, "2x16:int64", backward=True),
        "mlp": analyze(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                           torch.nn.Linear(16, 4)), "3x8"),  # fmt: skip
    }


@pytest.mark.parametrize("chip", ["h100-sxm", "xeon-8380", "rtx-4090", "apple-m2"])
@pytest.mark.parametrize(
    "options",
    [{}, {"phase": "forward"}, {"phase": "backward"}, {"runtime": "graphs"},
     {"ideal": True, "tf32": True}],  # fmt: skip
)
def test_equals_the_full_roofline(reports: dict, chip: str, options: dict) -> None:
    spec = load_spec(chip)
    memo: dict = {}
    for report in reports.values():
        full = roofline(report, spec, **options)
        for m in (None, memo, memo):  # without a memo, filling one, reusing it
            got = step_time(report, spec, memo=m, **options)
            assert got.latency_s == full.latency_s  # the same additions, in the same order
            assert got.signature == signature(full)


def test_unknown_runtime() -> None:
    with pytest.raises(HardwareSpecError, match="unknown runtime"):
        step_time(curves().report_at(10), toy(), runtime="tensorrt")
