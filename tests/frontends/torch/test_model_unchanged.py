"""Generated robustness suite: analysing a model leaves it bit-for-bit as it was.

Models are built from combinations of the structures that have broken this promise or could:
a module shared under two names, a module repeated in a Sequential, weights tied between two
modules, a parametrization, user forward hooks that write to the module, a registered buffer
and plain tensors (also inside a list and a dict) updated in place in forward, attributes set
lazily in forward, frozen parameters, dropout, train or eval mode, and a forward that raises
after it has mutated all of that. Each is analysed in every mode, forward only and with the
backward pass, and compared before and after: every parameter's and buffer's identity, class,
values (bit for bit), dtype, device and requires_grad; every tensor attribute's values; every
module's ``__dict__`` keys, training flag, parameter/buffer/module tables and hook tables (the
dict objects and their entries); the state_dict keys; and the random generators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

import modelmeter
from modelmeter.errors import ModelmeterError, ModelRunError

MODES = ("meta", "real", "auto")


@dataclass(frozen=True)
class Structure:
    shared: bool = False  # self.a = self.b = one Linear, both called
    repeated: bool = False  # nn.Sequential(lin, ReLU, lin)
    tied: bool = False  # dec.weight is enc.weight
    parametrized: bool = False  # enc.weight through a parametrization
    hooks: bool = False  # user pre/post forward hooks that write to the module
    buffer_mutated: bool = False  # a registered buffer += 1 in forward
    tensor_attrs: bool = False  # plain tensors (alone, in a list, in a dict) changed in place
    lazy: bool = False  # attributes set and containers grown in forward
    frozen: bool = False  # enc.bias does not require grad
    dropout: bool = False  # a Dropout in training mode (draws random numbers in a real run)
    train: bool = False
    raises: bool = False  # forward raises after all its mutations


FEATURES = [f.name for f in fields(Structure)]


class Symmetric(nn.Module):
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w.triu() + w.triu(1).transpose(0, 1)


def _pre_hook(module: nn.Module, args: tuple) -> None:
    module.pre_calls += 1


def _post_hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    module.post_seen.append(out.shape)
    return out * 1.0


class Generated(nn.Module):
    def __init__(self, s: Structure) -> None:
        super().__init__()
        self.s = s
        self.enc = nn.Linear(4, 4)
        if s.shared:
            self.a = self.b = nn.Linear(4, 4)
        if s.repeated:
            lin = nn.Linear(4, 4)
            self.seq = nn.Sequential(lin, nn.ReLU(), lin)
        if s.tied:
            self.dec = nn.Linear(4, 4, bias=False)
            self.dec.weight = self.enc.weight
        if s.parametrized:
            parametrize.register_parametrization(self.enc, "weight", Symmetric())
        if s.hooks:
            self.enc.pre_calls = 0
            self.post_seen: list = []
            self.enc.register_forward_pre_hook(_pre_hook)
            self.register_forward_hook(_post_hook)
        if s.buffer_mutated:
            self.register_buffer("count", torch.zeros(()))
        if s.tensor_attrs:
            self.steps = torch.zeros(())
            self.history = [torch.zeros(2)]
            self.cache = {"scale": torch.ones(2)}
        if s.lazy:
            self.memo: dict = {}
        if s.frozen:
            self.enc.bias.requires_grad_(False)
        if s.dropout:
            self.drop = nn.Dropout(0.5)
        self.train(s.train)
        if s.dropout:
            self.drop.train()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s
        y = self.enc(x)
        if s.shared:
            y = self.a(y) + self.b(y)
        if s.repeated:
            y = self.seq(y)
        if s.tied:
            y = self.dec(y)
        if s.buffer_mutated:
            self.count += 1
        if s.tensor_attrs:
            self.steps += 1
            self.history[0].add_(1)
            self.cache["scale"].mul_(2)
        if s.lazy:
            self.memo["shape"] = tuple(y.shape)
            self.seen = True
            self.enc.note = "called"
        if s.dropout:
            y = self.drop(y)
        if s.raises:
            raise RuntimeError("raised after mutating")
        return y


def _tensors(value: Any, depth: int = 0) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if depth < 4 and isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v, depth + 1)]
    if depth < 4 and isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v, depth + 1)]
    return []


def _tensor_facts(t: torch.Tensor) -> tuple:
    values = t.detach().clone() if not t.is_meta else None
    return (id(t), type(t), t.dtype, t.device, tuple(t.shape), t.requires_grad, values)


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Everything of the user's that an analysis must not change."""
    snap: dict[str, Any] = {
        "state_dict": list(model.state_dict().keys()),
        "rng": (torch.get_rng_state(), random.getstate()),
    }
    tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for name, t in tensors:
        snap[f"tensor {name}"] = _tensor_facts(t)
    for name, m in model.named_modules(remove_duplicate=False):
        d = m.__dict__
        snap[f"{name}: class, training, keys"] = (type(m), m.training, sorted(d))
        for key, value in d.items():
            if isinstance(value, dict) and key.startswith("_"):  # tables and hook tables
                snap[f"{name}.{key}"] = (id(value), [(k, id(v)) for k, v in value.items()])
            else:
                found = _tensors(value)
                snap[f"{name}.{key}"] = (repr(value) if not found else None, id(value))
                for i, t in enumerate(found):
                    snap[f"{name}.{key}[{i}]"] = _tensor_facts(t)
    return snap


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and torch.equal(a, b)  # same dtype and values: bit for bit for non-NaN data
        )
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert sorted(before) == sorted(after), set(before) ^ set(after)
    changed = [k for k in before if not _same(before[k], after[k])]
    assert not changed, f"changed by the analysis: {changed}"


def check(s: Structure, mode: str, backward: bool) -> None:
    torch.manual_seed(0)
    model = Generated(s)
    before = snapshot(model)
    try:
        report = modelmeter.analyze(model, "2x4", mode=mode, backward=backward)
    except ModelRunError:
        assert s.raises, "only the raising forward may fail"
    except ModelmeterError:
        assert s.raises or backward, "only a raising forward or backward may fail"
    else:
        assert not s.raises
        assert report.total().cost.macs > 0
    assert_unchanged(before, snapshot(model))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("feature", FEATURES)
def test_each_structure_alone_is_left_unchanged(feature: str, mode: str, backward: bool) -> None:
    check(Structure(**{feature: True}), mode, backward)


@pytest.mark.parametrize("mode", MODES)
def test_everything_at_once_is_left_unchanged(mode: str) -> None:
    check(Structure(**dict.fromkeys(FEATURES, True)), mode, backward=True)
    check(Structure(**dict.fromkeys(FEATURES, True) | {"raises": False}), mode, backward=False)


structures = st.builds(Structure, **{name: st.booleans() for name in FEATURES})


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(s=structures, mode=st.sampled_from(MODES), backward=st.booleans())
def test_generated_structures_are_left_unchanged(s: Structure, mode: str, backward: bool) -> None:
    check(s, mode, backward)


def test_the_snapshot_sees_each_kind_of_change() -> None:
    """The oracle itself: each change the suite guards against is caught by it."""
    s = Structure(**dict.fromkeys(FEATURES, True) | {"raises": False})
    changes = [
        lambda m: m.steps.add_(1),
        lambda m: m.history[0].add_(1),
        lambda m: m.cache["scale"].mul_(2),
        lambda m: m.count.add_(1),
        lambda m: m.seq[0]._parameters.__setitem__("weight", nn.Parameter(torch.zeros(4, 4))),
        lambda m: m.seq[2].weight.data.add_(1),
        lambda m: m.enc.bias.requires_grad_(True),
        lambda m: m.drop.train(not m.drop.training),
        lambda m: m.enc.register_forward_hook(_post_hook),
        lambda m: setattr(m, "seen", True),
        lambda m: m.memo.__setitem__("k", 1),
        lambda m: torch.rand(1),
    ]
    for change in changes:
        torch.manual_seed(0)
        model = Generated(s)
        before = snapshot(model)
        change(model)
        with pytest.raises(AssertionError):
            assert_unchanged(before, snapshot(model))
