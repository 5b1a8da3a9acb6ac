"""Keeping the user's model exactly as it was while its forward runs on copies.

:class:`Isolated` is entered around one traced run. It

- snapshots every module's ``__dict__`` (plain attributes, the ``_parameters``, ``_buffers``
  and ``_modules`` tables, hook tables, the ``training`` flag) and the contents of every list
  and dict reachable from it, so whatever the forward sets, adds or deletes is put back, with
  the same dict and list objects;
- snapshots the values, ``requires_grad`` and ``.grad`` of every tensor held in a plain
  attribute, or inside a list, tuple or dict attribute, so that in-place updates
  (``self.steps += 1``) are undone — even on a meta run, where such a tensor is still real;
- swaps the copies of parameters and buffers into each module's tables by identity: a module
  registered under two names, or a tensor tied between two modules, gets one copy and gets its
  own tensor back (``torch.func.functional_call`` restores duplicate names in the wrong order);
- saves and restores the random number generators (torch's CPU and initialised CUDA
  generators, Python's ``random``, NumPy's global one when loaded), so dropout or random ops in
  the forward leave the process's random streams where they were.

Everything is put back in ``__exit__``, also when the forward raises.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import torch

_TABLES = ("_parameters", "_buffers")  # swapped to copies; their tensors are never run
_MAX_DEPTH = 6  # how deep lists, tuples and dicts inside attributes are followed


class Isolated:
    """Context manager: run ``model`` on ``copies`` (``id(original) -> copy`` for every
    parameter and buffer) and leave the model, its tensors and the RNGs as they were."""

    def __init__(self, model: torch.nn.Module | None, copies: dict[int, torch.Tensor]) -> None:
        self.model = model
        self.copies = copies
        self.attrs = _AttrSnapshot(model)
        self.rng: _RngState | None = None

    def __enter__(self) -> Isolated:
        modules = _modules(self.model)
        if any(isinstance(m, torch.jit.ScriptModule) for m in modules):
            raise RuntimeError(
                "TorchScript modules cannot run on copies of their weights; analyse the module "
                "before scripting it, or export it to ONNX"
            )
        self.rng = _RngState()
        try:
            for m in modules:
                for name in _TABLES:
                    table = m.__dict__.get(name)
                    if not isinstance(table, dict):
                        continue
                    for key, t in table.items():
                        if t is not None and id(t) in self.copies:
                            table[key] = self.copies[id(t)]
        except BaseException:
            self.attrs.restore()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.attrs.restore()
        finally:
            if self.rng is not None:
                self.rng.restore()


class _AttrSnapshot:
    """Every module's ``__dict__`` with the contents of the lists and dicts in it, and the
    values of the tensors held outside the parameter and buffer tables."""

    def __init__(self, model: torch.nn.Module | None) -> None:
        self.modules: list[tuple[dict, dict]] = []
        self.containers: dict[int, tuple[Any, Any]] = {}
        self.tensors: dict[int, tuple[torch.Tensor, torch.Tensor | None, bool, int]] = {}
        self.grads: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for m in _modules(model):
            d = m.__dict__
            self.modules.append((d, dict(d)))
            for key, value in d.items():
                if key in _TABLES and isinstance(value, dict):
                    self._save_container(value, tensors=False)
                else:
                    self._save(value, 0)

    def _save(self, value: Any, depth: int) -> None:
        if isinstance(value, torch.Tensor):
            self._save_tensor(value)
        elif depth < _MAX_DEPTH and isinstance(value, (list, tuple, dict)):
            if id(value) in self.containers:
                return
            self._save_container(value, tensors=True, depth=depth)

    def _save_container(self, value: Any, *, tensors: bool, depth: int = 0) -> None:
        if isinstance(value, list):
            self.containers[id(value)] = (value, list(value))
        elif isinstance(value, dict):
            self.containers[id(value)] = (value, dict(value))
        else:  # a tuple: nothing to put back, only what it holds
            self.containers[id(value)] = (value, None)
        if tensors:
            for item in value.values() if isinstance(value, dict) else value:
                self._save(item, depth + 1)

    def _save_tensor(self, t: torch.Tensor) -> None:
        if id(t) in self.tensors:
            return
        if t.is_meta or t.layout != torch.strided:
            self.tensors[id(t)] = (t, None, t.requires_grad, -1)
            return
        with torch.no_grad():
            saved = t.detach().clone()
        self.tensors[id(t)] = (t, saved, t.requires_grad, _version(t))
        if t.requires_grad and t.is_leaf:  # a backward run must not fill the user's .grad
            self.grads.append((t, t.grad))
            if t.grad is not None:
                self._save_tensor(t.grad)

    def restore(self) -> None:
        for d, items in self.modules:
            for key in [k for k in d if k not in items]:
                del d[key]
            d.update(items)
        for obj, items in self.containers.values():
            if isinstance(obj, list):
                obj[:] = items
            elif isinstance(obj, dict):
                obj.clear()
                obj.update(items)
        for t, grad in self.grads:
            if t.grad is not grad:
                t.grad = grad
        failed: Exception | None = None
        for t, saved, requires_grad, version in self.tensors.values():
            try:
                _put_back(t, saved, requires_grad, version)
            except RuntimeError as e:  # put back every other tensor, then say so
                failed = failed or e
        if failed is not None:
            raise failed


def _modules(model: torch.nn.Module | None) -> list[torch.nn.Module]:
    return list(model.modules()) if isinstance(model, torch.nn.Module) else []


def _version(t: torch.Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter
        return -1


def _changed(t: torch.Tensor, saved: torch.Tensor, version: int) -> bool:
    """Whether ``t`` no longer holds ``saved`` (writes through ``.data`` keep the version)."""
    if version < 0 or _version(t) != version:
        return True
    if t.shape != saved.shape or t.dtype != saved.dtype or t.device != saved.device:
        return True
    with torch.no_grad():
        return not torch.equal(t, saved)


def _put_back(t: torch.Tensor, saved: torch.Tensor | None, requires_grad: bool, v: int) -> None:
    if saved is not None and _changed(t, saved, v):
        mode = torch.inference_mode() if t.is_inference() else torch.no_grad()
        with mode:
            if t.shape != saved.shape or t.dtype != saved.dtype:
                t.set_(saved)
            else:
                t.copy_(saved)
    if t.requires_grad != requires_grad and t.is_leaf:
        t.requires_grad_(requires_grad)


class _RngState:
    """The process's random generators, to put back after a run."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.python = random.getstate()
        np = sys.modules.get("numpy")
        self.numpy = np.random.get_state() if np is not None else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        random.setstate(self.python)
        if self.numpy is not None:
            sys.modules["numpy"].random.set_state(self.numpy)
