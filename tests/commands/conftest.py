"""Fixtures shared by the command-line tests: a model file written where the command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# f(): Linear(64, 128), ReLU, Linear(128, 32): 64 x 128 + 128 + 128 x 32 + 32 = 12,448
# parameters; frozen(): the same with requires_grad False
MLP = (
    "import torch.nn as nn\n\n\ndef f():\n"
    "    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))\n\n\n"
    "def frozen():\n    return f().requires_grad_(False)\n"
)


@pytest.fixture
def write_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """``write_model(name, code)``: the file ``name`` holding ``code`` in a fresh directory
    made the working one, so ``name:function`` names a model; returns ``name``."""

    def write(name: str, code: str) -> str:
        (tmp_path / name).write_text(code, encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        return name

    return write


@pytest.fixture
def mlp(write_model: Callable[[str, str], str]) -> str:
    """``m.py:f``, the MLP of :data:`MLP` (``m.py:frozen`` names it frozen)."""
    return write_model("m.py", MLP) + ":f"
