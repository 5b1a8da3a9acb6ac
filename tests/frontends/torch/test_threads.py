"""Concurrent analyses give exactly the single-threaded reports (issue 13, "threads agree").

Module hooks are process-wide and ``functional_call`` swaps the tensors of the module it
runs, so each thread must see only its own modules and its own copies. Four or more threads
analyse different small models (and two of them the same model object) over several
rounds, with the interpreter switching threads as often as it can; every report's
``to_dict()`` must equal the one a single thread produced, row for row and op for op.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import modelmeter


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))
        return self.head(x.mean((2, 3)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class TinyViT(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(Attention(dim, 2), nn.LayerNorm(dim), Attention(dim, 2))
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        return self.head(self.blocks(x).mean(1))


class LoopRNN(nn.Module):
    """One cell called once per step: its row counts every call."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(12, 10)
        self.out = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[0], 10, device=x.device, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.out(h)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))


def _cases() -> list[tuple[nn.Module, str]]:
    torch.manual_seed(0)
    cnn = TinyCNN()
    return [
        (cnn, "2x3x12x12"),
        (TinyViT(), "2x3x16x16"),
        (_mlp(), "3x20"),
        (LoopRNN(), "2x5x12"),
        (cnn, "2x3x12x12"),  # the same model object as the first thread's
    ]


@contextmanager
def _switching_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _in_threads(jobs: list[Callable[[], Any]], rounds: int) -> list[list[Any]]:
    """Run every job in its own thread, all started together, ``rounds`` times each."""
    results: list[list[Any]] = [[] for _ in jobs]
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def worker(i: int) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                results[i].append(jobs[i]())
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    with _switching_often():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


@pytest.mark.parametrize(
    "options",
    [{"mode": "meta"}, {"mode": "meta", "backward": True}, {"mode": "real"},
     {"mode": "real", "backward": True}],
    ids=["meta", "meta-backward", "real", "real-backward"],
)  # fmt: skip
def test_threads_give_the_single_threaded_reports(options: dict) -> None:
    cases = _cases()
    alone = [modelmeter.analyze(m, shape, **options).to_dict() for m, shape in cases]
    jobs = [
        (lambda m=m, shape=shape: modelmeter.analyze(m, shape, **options).to_dict())
        for m, shape in cases
    ]
    for i, reports in enumerate(_in_threads(jobs, rounds=3)):
        for report in reports:
            assert report == alone[i], f"thread {i} ({cases[i][1]}) disagrees"


_SEEN: list[dict] = []  # outside the model: analyze puts the model's own lists back


class AnalysesInside(nn.Module):
    """A forward that analyses another model and itself, and starts a thread that runs and
    analyses another model: nothing may deadlock, the inner reports are the usual ones, and
    the outer report does not count what the side thread ran."""

    def __init__(self, other: nn.Module) -> None:
        super().__init__()
        self.inner = _mlp()
        self.others = (other,)  # not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _SEEN:
            _SEEN.append(modelmeter.analyze(self.others[0], "3x20").to_dict())
            _SEEN.append(modelmeter.analyze(self, "3x20").to_dict())  # itself, recursively

            def side() -> None:
                self.others[0](torch.ones(3, 20))
                _SEEN.append(modelmeter.analyze(self.others[0], "3x20").to_dict())

            thread = threading.Thread(target=side)
            thread.start()
            thread.join(timeout=60)
        return self.inner(x)


def test_analyze_inside_forward_and_in_a_thread_it_starts() -> None:
    torch.manual_seed(0)
    _SEEN.clear()
    other = _mlp()
    outer = AnalysesInside(other)
    alone = modelmeter.analyze(other, "3x20").to_dict()
    report = modelmeter.analyze(outer, "3x20")
    assert len(_SEEN) == 3
    assert _SEEN[0] == alone and _SEEN[2] == alone
    calls = {node.name: node.calls for node in report.modules()}
    assert calls["inner"] == 1 and calls["inner.0"] == 1


def test_measure_beside_analyses_changes_no_report() -> None:
    cases = _cases()[:2]
    alone = [modelmeter.analyze(m, shape).to_dict() for m, shape in cases]
    jobs: list[Callable[[], Any]] = [
        (lambda m=m, shape=shape: modelmeter.analyze(m, shape).to_dict()) for m, shape in cases
    ]
    jobs.append(
        lambda: modelmeter.measure(cases[0][0], "2x3x12x12", warmup=0, repeats=2, per_module=True)
    )
    results = _in_threads(jobs, rounds=3)
    for i in range(len(cases)):
        assert all(report == alone[i] for report in results[i])


def test_sdpa_is_fused_only_in_the_thread_that_traces() -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    from modelmeter.frontends.torch.fused import fused_attention

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            self.names.add(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    q = torch.empty(1, 2, 8, 4, device="meta")
    inside, outside = threading.Event(), threading.Event()

    def tracing_thread() -> None:
        with fused_attention():
            inside.set()
            outside.wait(timeout=60)

    t = threading.Thread(target=tracing_thread)
    t.start()
    try:
        assert inside.wait(timeout=60)
        with Ops() as ops:  # this thread traces nothing: PyTorch's own (math) path
            F.scaled_dot_product_attention(q, q, q)
    finally:
        outside.set()
        t.join(timeout=60)
    assert "_scaled_dot_product_flash_attention_for_cpu" not in ops.names
    with fused_attention(), Ops() as ops:
        F.scaled_dot_product_attention(q, q, q)
    assert "_scaled_dot_product_flash_attention_for_cpu" in ops.names
