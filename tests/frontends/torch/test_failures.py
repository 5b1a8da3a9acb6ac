"""A failing model run names where it failed: the innermost module still running when the
error was raised, with the shapes it was given."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import ModelRunError


class Inner(nn.Module):
    def __init__(self, fail: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)  # a child returns before anything fails
        if self.fail:
            raise RuntimeError("inner failed")
        return y


class Root(nn.Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.block = Inner(fail=where == "block")
        self.head = nn.Linear(4, 2)
        self.where = where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            self.block(x[:, :3])  # a wrong shape, caught: not the error reported below
        except RuntimeError:
            pass
        y = self.head(self.block(x))
        if self.where == "root":
            raise ValueError("root failed")
        return y


@pytest.mark.parametrize("mode", ["meta", "real"])
@pytest.mark.parametrize(
    ("where", "blamed"),
    [("root", "module '<root>' (Root)"), ("block", "module 'block' (Inner)")],
)
def test_the_innermost_running_module_is_blamed(mode: str, where: str, blamed: str) -> None:
    with pytest.raises(ModelRunError) as caught:
        modelmeter.analyze(Root(where), "2x4", mode=mode)
    message = str(caught.value)
    assert message.startswith(f"{blamed} failed on inputs [2x4]: ")
    assert message.endswith(" failed") and "\n" not in message


def test_an_error_in_a_child_still_names_the_child() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))
    with pytest.raises(ModelRunError, match=r"^module '1' \(Linear\) failed on inputs \[2x4\]"):
        modelmeter.analyze(model, "2x4")


@pytest.mark.parametrize("mode", ["meta", "real", "auto"])
def test_sys_exit_in_the_forward_is_a_model_run_error(mode: str) -> None:
    class Exits(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise SystemExit(0)

    with pytest.raises(ModelRunError, match=r"called sys.exit\(0\) in its forward"):
        modelmeter.analyze(Exits(), "1x4", mode=mode)


class _ByKeyword(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(input=x)  # the child called by keyword too


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_inputs_given_by_keyword_are_not_called_no_tensors(mode: str) -> None:
    # Before: "module '<root>' (ResNet) failed on inputs [no tensors]" for --input img=1x3x64x64
    with pytest.raises(ModelRunError, match=r"module '<root>' \(_ByKeyword\) failed on inputs "
                       r"\[img=2x4\]: TypeError"):  # fmt: skip
        modelmeter.analyze(_ByKeyword(), kwargs={"img": "2x4"}, mode=mode)
    with pytest.raises(ModelRunError, match=r"module 'inner' \(Linear\) failed on inputs "
                       r"\[none positional\]"):  # fmt: skip
        modelmeter.analyze(_ByKeyword(), "2x5", mode=mode)
