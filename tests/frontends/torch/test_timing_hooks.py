"""measure's per-module clock leaves no hook behind, on every path (issue 13)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelmeter.errors import ModelRunError
from modelmeter.frontends.torch.timing import time_model


def _hooks(model: nn.Module) -> list[tuple[int, int]]:
    return [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in model.modules()]


class FailsOnSecondCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("second call fails")
        return self.fc(x)


def _time(model: nn.Module):  # noqa: ANN202
    return time_model(
        model, (torch.ones(2, 4),), {}, torch.device("cpu"), warmup=0, repeats=2,
        per_module=True,
    )  # fmt: skip


def test_a_scripted_submodule_is_skipped_and_no_hook_stays() -> None:
    # the Linear before it takes hooks; the scripted one refuses them
    model = nn.Sequential(nn.Linear(4, 4), torch.jit.script(nn.Sequential(nn.Linear(4, 4))))
    timings = _time(model)
    assert set(timings.module_samples) == {"", "0"}
    assert all(len(v) == 2 for v in timings.module_samples.values())
    assert any("scripted" in n for n in timings.notes)
    assert _hooks(model) == [(0, 0)] * len(list(model.modules()))


def test_a_failing_forward_leaves_no_hook() -> None:
    model = FailsOnSecondCall()
    with pytest.raises(ModelRunError, match="second call fails"):
        _time(model)
    assert _hooks(model) == [(0, 0), (0, 0)]


def test_registration_failing_part_way_leaves_no_hook() -> None:
    class Refuses(nn.Linear):
        def register_forward_hook(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
            raise RuntimeError("no hooks here")

    model = nn.Sequential(nn.Linear(4, 4), Refuses(4, 4))
    with pytest.raises(ModelRunError, match="no hooks here"):
        _time(model)
    assert _hooks(model) == [(0, 0)] * 3
