"""Analysing a model leaves it exactly as it was (DESIGN.md non-negotiable 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import ModelRunError


class Net(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.fc.weight.requires_grad_(False)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.fail:
            raise RuntimeError("boom in the middle of forward")
        return self.fc(x.mean((2, 3)))


def _snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "state_ids": {k: id(v) for k, v in model.named_parameters()},
        "training": [m.training for m in model.modules()],
        "requires_grad": {k: p.requires_grad for k, p in model.named_parameters()},
        "devices": {k: v.device for k, v in model.state_dict().items()},
        "dtypes": {k: v.dtype for k, v in model.state_dict().items()},
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "buffers": sorted(k for k, _ in model.named_buffers()),
        "class": [type(m) for m in model.modules()],
    }


def _assert_same(model: nn.Module, before: dict) -> None:
    after = _snapshot(model)
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), f"{k} changed"
    for key in ("state_ids", "training", "requires_grad", "devices", "dtypes", "hooks", "buffers",
                "class"):
        assert before[key] == after[key], key


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_train_mode_batchnorm_untouched(mode: str) -> None:
    torch.manual_seed(0)
    model = Net().train()
    before = _snapshot(model)
    report = modelmeter.analyze(model, "2x3x16x16", mode=mode, dtype="bf16")
    assert report.total().cost.macs > 0
    _assert_same(model, before)
    # BN running stats would change under a real training-mode forward on the model itself:
    assert model.bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_forward_raising_midway_leaves_no_trace(mode: str) -> None:
    model = Net(fail=True).train()
    before = _snapshot(model)
    with pytest.raises(ModelRunError, match="boom"):
        modelmeter.analyze(model, "2x3x16x16", mode=mode)
    _assert_same(model, before)
    # no global module hooks left behind
    from torch.nn.modules import module as m

    assert not m._global_forward_hooks and not m._global_forward_pre_hooks


def test_user_tensor_input_is_not_modified() -> None:
    class InPlace(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mul_(2)

    x = torch.ones(3)
    modelmeter.analyze(InPlace(), x, mode="real")
    assert torch.equal(x, torch.ones(3))


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_state_set_lazily_in_forward_is_put_back(mode: str) -> None:
    class Lazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scales = None  # set on the first call, like MultiScaleRoIAlign
            self.history: list[int] = [1]
            self.cache: dict[str, torch.Tensor] = {}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.scales is None:
                self.scales = [0.5]
            self.history.append(x.shape[0])
            self.cache["last"] = x
            self.fc.seen = True  # a new attribute on a child
            return self.fc(x)

    model = Lazy()
    modelmeter.analyze(model, "2x4", mode=mode)
    assert model.scales is None and model.history == [1] and model.cache == {}
    assert not hasattr(model.fc, "seen")


@pytest.mark.parametrize("mode", ["meta", "real", "auto"])
@pytest.mark.parametrize("layout", ["sequential", "two_names"])
def test_module_registered_under_two_names_keeps_its_parameters(mode: str, layout: str) -> None:
    lin = nn.Linear(4, 4)
    if layout == "sequential":
        model: nn.Module = nn.Sequential(lin, nn.ReLU(), lin)
    else:
        model = nn.Module()
        model.a = model.b = lin
        model.forward = lambda x: model.b(model.a(x))  # type: ignore[method-assign]
    weight, bias = lin.weight, lin.bias
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    modelmeter.analyze(model, "2x4", mode=mode)
    assert lin.weight is weight and lin.bias is bias
    assert lin._parameters["weight"] is weight and isinstance(lin.weight, nn.Parameter)
    # the model still trains: the optimizer's parameter is the one the forward uses
    model(torch.ones(2, 4)).sum().backward()
    before = weight.detach().clone()
    optimizer.step()
    assert not torch.equal(lin.weight.detach(), before)


@pytest.mark.parametrize("mode", ["meta", "real", "auto"])
def test_plain_tensors_updated_in_place_are_put_back(mode: str) -> None:
    class Counting(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.steps = torch.zeros(())
            self.history = [torch.zeros(2)]
            self.cache = {"scale": torch.ones(2)}
            self.alias = [self.fc.weight]  # the user's own parameter, reached around the swap

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.steps += 1
            self.history[0].add_(1)
            self.cache["scale"].mul_(2)
            self.alias[0].data.mul_(0)  # .data: the version counter does not move
            return self.fc(x)

    model = Counting()
    weight = model.fc.weight.detach().clone()
    modelmeter.analyze(model, "2x4", mode=mode)
    assert model.steps.item() == 0
    assert model.history[0].tolist() == [0.0, 0.0]
    assert model.cache["scale"].tolist() == [1.0, 1.0]
    assert torch.equal(model.fc.weight.detach(), weight)


@pytest.mark.parametrize("mode", ["meta", "real", "auto"])
def test_random_generators_are_left_where_they_were(mode: str) -> None:
    import random

    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.drop = nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            random.random()
            return self.drop(self.fc(x)) + torch.rand(())

    model = Noisy().train()
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    modelmeter.analyze(model, "2x4", mode=mode)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state


@pytest.mark.parametrize("mode", ["auto", "real"])  # a real CPU tensor fails a meta run
def test_a_backward_run_leaves_no_gradient_on_tensors_the_forward_reaches(mode: str) -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scale = [nn.Parameter(torch.ones(4))]  # not registered: a plain list

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * self.scale[0]

    model = Scaled()
    modelmeter.analyze(model, "2x4", mode=mode, backward=True)
    assert model.scale[0].grad is None and model.fc.weight.grad is None


@pytest.mark.parametrize("mode", ["meta", "real", "auto"])
def test_torchscript_modules_are_refused_rather_than_run_on_their_own_weights(mode: str) -> None:
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).train())
    with pytest.raises(ModelRunError, match="TorchScript modules cannot run on copies"):
        modelmeter.analyze(scripted, "2x4", mode=mode)
    assert scripted[1].num_batches_tracked.item() == 0
