"""What --ideal prices as overheads (docs/hardware.md, "Attainable figures, --ideal and
--runtime"): the file's top-level [overhead], never [attainable.overhead]."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec


def _linear_relu() -> modelmeter.Report:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
    return modelmeter.analyze(model, "1x8")


def test_ideal_prices_the_top_level_overheads_only() -> None:
    # in series (overlap off), so that each op's overhead is its own, none hidden behind the
    # kernel before it
    spec = replace(load_spec("h100-sxm"), overlap=False)
    report = _linear_relu()
    ideal = spec.ideal()
    # the datasheet section: [overhead] kernel = "4us" and nothing else
    assert ideal.kernel_overhead == pytest.approx(4e-6)
    assert (ideal.module_call_s, ideal.launch_overhead or 0.0) == (0.0, 0.0)
    assert not ideal.launch_classes and not ideal.dtype_overhead
    # eager: 2 ops (addmm, relu) x 4 us each, no module call, no launch time: 8 us of overhead
    eager = roofline(report, spec, ideal=True)
    assert [t.overhead_s for t in eager.ops] == pytest.approx([4e-6, 4e-6])
    # graphs: no host time and no launch time under --ideal
    graphs = roofline(report, spec, ideal=True, runtime="graphs")
    assert [t.overhead_s for t in graphs.ops] == [0.0, 0.0]
    # the model: 8 us of overhead plus the two kernels' nanoseconds of busy time
    assert eager.latency_s == pytest.approx(8e-6, rel=1e-4)
    # the attainable figures, by contrast, charge [attainable.overhead]: more than 4 us per op
    attained = roofline(report, spec)
    assert all(t.overhead_s > 4e-6 for t in attained.ops)


def test_a_calibrated_file_keeps_its_overheads_under_ideal() -> None:
    # a file without [attainable] (a calibrated one): its top-level figures are the ones
    spec = replace(load_spec("h100-sxm"), attainable=None, kernel_overhead=20e-6,
                   module_call=3e-6, overlap=False)
    # eager, in series: each op 20 us, plus the model's and the Linear's calls (2 x 3 us) at
    # the first op, the ReLU's (3 us) at the second: 26 us and 23 us
    ops = roofline(_linear_relu(), spec, ideal=True).ops
    assert [t.overhead_s for t in ops] == pytest.approx([26e-6, 23e-6])
