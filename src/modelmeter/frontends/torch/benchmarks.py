"""The PyTorch side of ``modelmeter calibrate``: the benchmark kernels (square matmuls,
elementwise ops, a large copy, a tiny conv/BN/ReLU model, one op per kernel class) on one
device, each timed as the best of rounds of back-to-back calls. What the times mean (rates,
overheads, attainable fractions) is worked out by the use case, modelmeter.hardware.calibrate.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from modelmeter.errors import ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.torch.device import (
    backend_flags,
    capacity,
    device_name,
    resolve_device,
    tf32_allowed,
    vendor,
)
from modelmeter.frontends.torch.inputs import torch_dtype
from modelmeter.frontends.torch.timing import Timer

Case = tuple[Callable[..., Any], tuple[torch.Tensor, ...], Callable[[], Any]]
"""(what to analyse, its example inputs on meta, the call to time on the device)"""


@dataclass(frozen=True)
class Plan:
    matmul_sizes: tuple[int, ...]
    vector_numel: int
    copy_numel: int
    rounds: int
    budget_s: float  # per figure: stop adding rounds/sizes past this
    kernel_shape: tuple[int, int, int, int]  # N, C, H, W of the kernel-class benchmarks


def plan_for(dev: torch.device, quick: bool) -> Plan:
    if dev.type == "cpu":
        if quick:
            return Plan((256, 512), 1 << 17, 1 << 24, 5, 1.5, (2, 64, 56, 56))
        return Plan((512, 1024, 2048), 1 << 17, 1 << 26, 5, 5.0, (8, 64, 56, 56))
    # GPU elementwise calls on 1 << 24 elements last tens of microseconds: shorter ones (a
    # cache-resident 1 << 21) are timed at the host's launch rate, which varied 6x between
    # two processes on one H100
    if quick:
        return Plan((2048, 4096), 1 << 24, 1 << 26, 5, 2.0, (16, 128, 56, 56))
    return Plan((2048, 4096, 8192), 1 << 24, 1 << 28, 10, 10.0, (64, 128, 56, 56))


def _meta(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(torch.empty(t.shape, dtype=t.dtype, device="meta") for t in tensors)


# One representative op per kernel class that often runs below the roofline: a dense 3x3
# convolution (attains less than a square matmul), a depthwise 3x3 convolution (no channel
# reduction), a 3x3/2 max pool and an inference batch norm. C channels, NCHW.
KERNEL_BENCHMARKS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "conv": lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
    "depthwise": lambda x, w: torch.nn.functional.conv2d(x, w, padding=1, groups=x.shape[1]),
    "pool": lambda x, w: torch.nn.functional.max_pool2d(x, 3, 2, 1),
    "norm": lambda x, w: torch.nn.functional.batch_norm(x, w[0], w[1], w[2], w[3]),
}


def _kernel_args(name: str, c: int, dev: torch.device, dt: torch.dtype) -> torch.Tensor:
    """The second argument of a kernel benchmark: a conv weight, or BN's four vectors."""
    if name == "conv":
        return torch.randn(c, c, 3, 3, device=dev).to(dt)
    if name == "depthwise":
        return torch.randn(c, 1, 3, 3, device=dev).to(dt)
    return torch.rand(4, c, device=dev).to(dt) + 0.5  # mean, var (> 0), weight, bias


class TorchBench:
    """Calibration kernels on one PyTorch device (``device`` resolved: InputError if it is
    not usable). ``rounds`` keeps every label's rounds (seconds per call), so that the use
    case can tell how much they varied."""

    def __init__(self, device: str, quick: bool) -> None:
        self.dev = resolve_device(device)
        self.plan = plan_for(self.dev, quick)
        self.timer = Timer(self.dev)
        self.rounds: dict[str, list[list[float]]] = {}
        dev = self.dev
        self.type = dev.type
        self.device = str(dev)
        self.device_name = device_name(dev)
        self.runtime = f"torch {torch.__version__}"
        self.vendor = vendor(dev)
        self.capacity = capacity(dev)
        # back-to-back calls: a queue (CUDA, MPS) hides each launch behind the kernel before
        # it; a CPU pays it every call
        self.overlap = dev.type in ("cuda", "mps")

    @property
    def threads(self) -> int | None:
        return torch.get_num_threads() if self.type == "cpu" else None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Inference mode, the caller's RNG left as it was (the benchmarks draw their
        operands from it); the device's failures as one clear ModelRunError."""
        dev = self.dev
        try:
            rng = [dev.index or 0] if dev.type == "cuda" else []
            with torch.random.fork_rng(devices=rng), torch.inference_mode():
                yield
        except ModelmeterError:
            raise
        except torch.cuda.OutOfMemoryError as e:
            raise ModelRunError(
                f"out of memory on {dev} while calibrating: {first_line(e)}"
            ) from None
        except RuntimeError as e:
            raise ModelRunError(f"calibration failed on {dev}: {first_line(e)}") from None

    def as_measured(self) -> contextlib.AbstractContextManager[None]:
        """The settings ``measure`` runs with: cuDNN autotuned, no TF32."""
        return backend_flags(self.dev, False)

    def best(self, label: str, fn: Callable[[], Any]) -> float:
        """The least time per call over up to ``plan.rounds`` rounds, stopping early once
        ``plan.budget_s`` is spent. A round is enough back-to-back calls to last about 2 ms
        (judged from a first, warm-up call), so that launch latency and timer resolution do
        not dominate short kernels. Keeps the rounds under ``label``."""
        timer, plan = self.timer, self.plan
        fn()
        first = timer.time(fn, 1)
        calls = max(1, min(200, math.ceil(2e-3 / max(first, 1e-7))))
        t_end = time.perf_counter() + plan.budget_s
        rounds: list[float] = []
        for _ in range(plan.rounds):
            rounds.append(timer.time(fn, calls))
            if time.perf_counter() > t_end:
                break
        self.rounds.setdefault(label, []).append(rounds)
        return min(rounds)

    def matmul(self, name: str) -> tuple[float, int]:
        """Best FLOP/s of square ``torch.mm`` over the plan's sizes (and that size)."""
        dev = self.dev
        dt = torch.float32 if name == "tfloat32" else torch_dtype(name)
        best, best_n = 0.0, 0
        with tf32_allowed(name == "tfloat32"):
            for n in self.plan.matmul_sizes:
                a = torch.randn(n, n, device=dev).to(dt)
                b = torch.randn(n, n, device=dev).to(dt)
                out = torch.empty(n, n, device=dev, dtype=dt)
                # n x n x n multiply-adds; the exact convention counts n*n*(2n-1) FLOPs
                flops = n * n * (2 * n - 1)
                t0 = time.perf_counter()
                seconds = self.best(f"matmul {name}", lambda a=a, b=b, o=out: torch.mm(a, b, out=o))
                rate = flops / seconds
                if rate > best:
                    best, best_n = rate, n
                del a, b, out
                if time.perf_counter() - t0 > self.plan.budget_s:
                    break  # the next size would take too long
        return best, best_n

    def vector_cases(self, name: str) -> list[Case]:
        """Elementwise ops (add; tanh-GELU, 9 FLOPs per element) on a tensor large enough to
        occupy the device: on a CPU small enough to stay in cache, on a GPU large enough that
        each call outlasts its launch."""
        x = torch.randn(self.plan.vector_numel, device=self.dev).to(torch_dtype(name))
        out = torch.empty_like(x)
        return [
            (torch.add, _meta(x, x), lambda: torch.add(x, x, out=out)),
            (
                lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
                _meta(x),
                lambda: torch.nn.functional.gelu(x, approximate="tanh"),
            ),
        ]

    def copy(self) -> float:
        """Bytes read + written per second of a large float32 tensor copy."""
        src = torch.randn(self.plan.copy_numel, device=self.dev)
        dst = torch.empty_like(src)
        seconds = self.best("copy", lambda: dst.copy_(src))
        return 2 * src.numel() * src.element_size() / seconds

    @property
    def copy_bytes(self) -> int:
        return self.plan.copy_numel * 4

    def tiny_model(self) -> tuple[torch.nn.Module, torch.Tensor]:
        """A tiny conv/BN/ReLU model (8 blocks, 4 channels, 8x8) and its input, on the CPU."""
        layers: list[torch.nn.Module] = []
        for _ in range(8):
            layers += [
                torch.nn.Conv2d(4, 4, 3, padding=1),
                torch.nn.BatchNorm2d(4),
                torch.nn.ReLU(),
            ]
        return torch.nn.Sequential(*layers).eval(), torch.randn(1, 4, 8, 8)

    def overhead_times(
        self, tiny: tuple[torch.nn.Module, torch.Tensor], dtypes: list[str]
    ) -> tuple[list[float], dict[str, list[float]]]:
        """Rounds of 200 tiny adds (seconds per add), then of 20 forwards of ``tiny`` per
        dtype (seconds per forward; the dtypes' rounds interleaved, so a clock that drifts
        during the run shifts them alike)."""
        dev, timer = self.dev, self.timer
        x = torch.ones(1, device=dev)
        y = torch.empty_like(x)
        rounds = max(5, self.plan.rounds)
        adds = [timer.time(lambda: torch.add(x, x, out=y), 200) for _ in range(rounds)]
        module, inp = tiny
        cases: dict[str, tuple[torch.nn.Module, torch.Tensor]] = {}
        for name in dtypes:
            dt = torch_dtype(name)
            model = copy.deepcopy(module).to(device=dev, dtype=dt)
            arg = inp.to(device=dev, dtype=dt)
            for _ in range(3):
                model(arg)
            cases[name] = (model, arg)
        per_forward: dict[str, list[float]] = {name: [] for name in dtypes}
        for _ in range(rounds):
            for name, (model, arg) in cases.items():
                per_forward[name].append(timer.time(lambda m=model, a=arg: m(a), 20))
        for name, times in per_forward.items():
            self.rounds.setdefault(f"overhead {name}", []).append(times)
        return adds, per_forward

    def kernel_cases(self, name: str) -> Iterator[tuple[str, Case]]:
        """One op per kernel class (``KERNEL_BENCHMARKS``) in dtype ``name``, NCHW of the
        plan's kernel shape."""
        n, c, h, w = self.plan.kernel_shape
        dt = torch_dtype(name)
        x = torch.randn(n, c, h, w, device=self.dev).to(dt)
        for cls, fn in KERNEL_BENCHMARKS.items():
            arg = _kernel_args(cls, c, self.dev, dt)
            yield cls, (fn, _meta(x, arg), lambda fn=fn, x=x, arg=arg: fn(x, arg))

    def conv_memory_case(self, name: str) -> Case:
        """A 1x1 convolution with few channels, which the roofline puts below the ridge
        (NCHW libraries reorder its data around a small matrix product)."""
        n, c, h, w = self.plan.kernel_shape
        dt = torch_dtype(name)
        xs = torch.randn(n, c // 4, 2 * h, 2 * w, device=self.dev).to(dt)
        ws = torch.randn(c // 4, c // 4, 1, 1, device=self.dev).to(dt)
        conv = torch.nn.functional.conv2d
        return conv, _meta(xs, ws), lambda: conv(xs, ws)

    def matvec_case(self, name: str) -> Case:
        """Matrix-vector products as a decode step runs them: one 1024-vector through each of
        32 distinct 1024 x 1024 matrices in turn (128 MiB in float32, more than a CPU's
        caches), bound by reading their weights. The example is one of them."""
        n, count = 1024, 32
        dt = torch_dtype(name)
        x = torch.randn(1, n, device=self.dev).to(dt)
        ws = [torch.randn(n, n, device=self.dev).to(dt) for _ in range(count)]
        linear = torch.nn.functional.linear

        def run() -> None:
            for w in ws:
                linear(x, w)

        return linear, _meta(x, ws[0]), run

    def kernel_shapes(self) -> str:
        n, c, h, w = self.plan.kernel_shape
        return f"NCHW {n}x{c}x{h}x{w}, 3x3; conv memory: {n}x{c // 4}x{2 * h}x{2 * w}, 1x1"


__all__ = ["KERNEL_BENCHMARKS", "Plan", "TorchBench", "plan_for"]
