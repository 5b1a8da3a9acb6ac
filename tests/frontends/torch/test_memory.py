"""Repeated analyses keep memory flat (issue 13, "memory grows").

A backward trace hooks the autograd graph; whatever it leaves behind (hooks closing over the
graph, parameter copies and their gradients) would pile up call after call. After a warm-up
call, the number of live tensors must not grow over further calls, in meta and real mode,
also when the forward fails, and the tracer's own objects must be freed.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import ModelRunError
from modelmeter.frontends.torch import tracer as tracer_module


class Net(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))
        if self.fail:
            raise RuntimeError("fails after its children ran")
        return x


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def _analyze(model: nn.Module, mode: str, backward: bool) -> None:
    try:
        modelmeter.analyze(model, "2x3x10x10", mode=mode, backward=backward)
    except ModelRunError:
        assert model.fail


@pytest.mark.parametrize(
    ("mode", "backward", "fail"),
    [("meta", True, False), ("real", True, False), ("meta", True, True), ("real", False, False)],
    ids=["meta-backward", "real-backward", "meta-backward-fails", "real-forward"],
)
def test_repeated_analyses_leave_no_tensors(mode: str, backward: bool, fail: bool) -> None:
    model = Net(fail)
    _analyze(model, mode, backward)  # warm-up: lazily built caches
    before = _live_tensors()
    for _ in range(4):
        _analyze(model, mode, backward)
    assert _live_tensors() - before == 0


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_tracer_objects_are_freed_after_analyze(mode: str, monkeypatch) -> None:
    made: list[weakref.ref] = []
    for cls in (tracer_module.OpTracer, tracer_module.ScopeTracker, tracer_module.Lifetimes):
        def init(self, *args, _init=cls.__init__, **kwargs) -> None:  # noqa: ANN001
            _init(self, *args, **kwargs)
            made.append(weakref.ref(self))

        monkeypatch.setattr(cls, "__init__", init)
    report = modelmeter.analyze(Net(), "2x3x10x10", mode=mode, backward=True)
    assert report.total().cost.macs > 0
    assert len(made) == 3
    gc.collect()
    assert [r() for r in made] == [None, None, None]
