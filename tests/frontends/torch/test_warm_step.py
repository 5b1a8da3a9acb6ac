"""The optimizer's untraced warm-up step (frontends/torch/optimizers.py) skips the in-place
updates of meta tensors: the state it leaves is the state a full step leaves."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from modelmeter.events import StepSetup
from modelmeter.frontends.torch import optimizers
from modelmeter.frontends.torch.optimizers import MetaItems, build_optimizer


def _params() -> list[torch.Tensor]:
    shapes = [(16, 8), (8,), (4, 4, 2)]
    return [torch.empty(s, device="meta", requires_grad=True) for s in shapes]


def _state(opt: Any) -> list[tuple]:
    """Each state tensor's name, shape, dtype and device, and the value of those not on meta
    (Adam's step counters); other state values as they are."""
    out = []
    for state in opt.state.values():
        for name, v in sorted(state.items()):
            if isinstance(v, torch.Tensor):
                value = None if v.device.type == "meta" else v.tolist()
                out.append((name, tuple(v.shape), v.dtype, v.device.type, value))
            else:
                out.append((name, v))
    return out


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "adafactor"])
@pytest.mark.parametrize("variant", ["foreach", "for-loop"])
def test_warm_state_equals_a_full_step(
    optimizer: str, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = StepSetup(optimizer, variant, "fp32", weight_decay=0.01)
    skipped, _ = build_optimizer(setup, _params())
    monkeypatch.setattr(optimizers, "_WarmStep", MetaItems)  # every op runs
    full, _ = build_optimizer(setup, _params())
    assert _state(skipped) == _state(full)
    assert _state(skipped)  # the optimizer has state to compare (a step counter at least)


def test_updates_on_other_devices_run() -> None:
    # Adam's step counter lives on the CPU: the warm-up step counts it (1.0), the update of
    # the meta moments is skipped
    opt, _ = build_optimizer(StepSetup("adam", "foreach", "fp32"), _params())
    steps = [s["step"] for s in opt.state.values()]
    assert [float(s) for s in steps] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("optimizer", "variant", "precision"),
    [("adamw", "foreach", "fp32"), ("adam", "for-loop", "bf16-mixed"),
     ("sgd", "foreach", "fp16-mixed"), ("adafactor", "for-loop", "fp32")],  # fmt: skip
)
def test_traced_step_equals_one_that_runs_every_update(
    optimizer: str, variant: str, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the traced step records the optimizer's in-place updates of meta tensors without
    # running their meta kernels: every op, count, byte and live-byte figure is the same
    from modelmeter.frontends.torch.tracer import OpTracer
    from modelmeter.frontends.torch.training import _StepTracer
    from modelmeter.usecases.train import train

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                   torch.nn.Linear(16, 4))  # fmt: skip

    def figures() -> tuple:
        r = train(model(), "2x8", optimizer=optimizer, variant=variant, precision=precision)
        ops = [(n.name, o.op, o.phase, o.cost, o.dtype, o.shapes)
               for n in r.report.modules() for o in n.ops]  # fmt: skip
        return ops, r.peak, r.memory, r.model_states

    skipped = figures()
    monkeypatch.setattr(_StepTracer, "_execute", OpTracer._execute)
    monkeypatch.setattr(optimizers, "_WarmStep", MetaItems)
    assert skipped == figures()
    assert any(phase == "optimizer" for _, _, phase, *_ in skipped[0])
