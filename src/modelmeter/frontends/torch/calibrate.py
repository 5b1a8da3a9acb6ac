"""Calibration benchmarks: attainable matmul and vector FLOP/s per dtype, copy bandwidth and
per-op overhead on a device, written as a hardware spec (``modelmeter calibrate``)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from modelmeter.analysis.measure import Calibration, quantile
from modelmeter.errors import InputError, ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.torch.inputs import torch_dtype
from modelmeter.frontends.torch.runner import (
    UNSTABLE,
    Progress,
    _backend_flags,
    _capacity,
    _Timer,
    _vendor,
    device_name,
    resolve_device,
    tf32_allowed,
)
from modelmeter.units import canonical_dtype


@dataclass(frozen=True)
class _Plan:
    matmul_sizes: tuple[int, ...]
    vector_numel: int
    copy_numel: int
    rounds: int
    budget_s: float  # per figure: stop adding rounds/sizes past this
    kernel_shape: tuple[int, int, int, int]  # N, C, H, W of the kernel-class benchmarks


def _plan(dev: torch.device, quick: bool) -> _Plan:
    if dev.type == "cpu":
        if quick:
            return _Plan((256, 512), 1 << 17, 1 << 24, 5, 1.5, (2, 64, 56, 56))
        return _Plan((512, 1024, 2048), 1 << 17, 1 << 26, 5, 5.0, (8, 64, 56, 56))
    # GPU elementwise calls on 1 << 24 elements last tens of microseconds: shorter ones (a
    # cache-resident 1 << 21) are timed at the host's launch rate, which varied 6x between
    # two processes on one H100
    if quick:
        return _Plan((2048, 4096), 1 << 24, 1 << 26, 5, 2.0, (16, 128, 56, 56))
    return _Plan((2048, 4096, 8192), 1 << 24, 1 << 28, 10, 10.0, (64, 128, 56, 56))


class _Bench:
    """Times calibration kernels: best of rounds, and how much the rounds varied."""

    def __init__(self, timer: _Timer, plan: _Plan) -> None:
        self.timer = timer
        self.plan = plan
        self.spread: dict[str, float] = {}

    def best(self, label: str, fn: Callable[[], Any]) -> float:
        """The least time per call over up to ``plan.rounds`` rounds, stopping early once
        ``plan.budget_s`` is spent. A round is enough back-to-back calls to last about 2 ms
        (judged from a first, warm-up call), so that launch latency and timer resolution do
        not dominate short kernels. Records median / best of the rounds under ``label``."""
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
        best = min(rounds)
        if best > 0:
            self.spread[label] = max(self.spread.get(label, 0.0), quantile(rounds, 0.5) / best)
        return best


def _counted_flops(fn: Callable[..., Any], *example: torch.Tensor) -> int:
    """FLOPs modelmeter counts for ``fn(*example)`` (traced on meta: same formulas as the
    analysis, so measured rates are in the units the roofline divides by)."""
    import modelmeter

    metas = tuple(torch.empty(t.shape, dtype=t.dtype, device="meta") for t in example)
    return modelmeter.analyze(fn, metas).total().cost.flops


def calibrate(
    device: str = "cpu",
    dtypes: list[str] | None = None,
    *,
    quick: bool = False,
    progress: Progress | None = None,
) -> Calibration:
    """Measure attainable matmul and vector FLOP/s per dtype, copy bandwidth and per-op
    overhead on ``device``. ``dtypes``: canonical names or aliases (``tf32`` means float32
    matmuls with TF32 allowed); default float32 on CPU, float32/tf32/bf16/fp16 on CUDA."""
    dev = resolve_device(device)
    if dtypes is None:
        dtypes = (
            ["float32"] if dev.type == "cpu" else ["float32", "tfloat32", "bfloat16", "float16"]
        )
    names: list[str] = []
    for d in dtypes:
        try:
            c = canonical_dtype(d)
        except ValueError as e:
            raise InputError(str(e)) from None
        if not c.startswith(("float", "bfloat", "tfloat")) or c.startswith("float8"):
            raise InputError(f"cannot calibrate {d!r}: use float32, tf32, bf16, fp16 or fp64")
        if c == "tfloat32" and dev.type != "cuda":
            raise InputError("tf32 is a CUDA setting: calibrate it with --device cuda")
        if c not in names:
            names.append(c)
    plan = _plan(dev, quick)
    bench = _Bench(_Timer(dev), plan)
    steps = 2 * len(names) + 3
    done = 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, steps)

    details: dict[str, Any] = {}
    matmul: dict[str, float] = {}
    vector: dict[str, float] = {}
    try:
        with torch.inference_mode():
            for name in names:
                matmul[name], size = _matmul_rate(dev, bench, name)
                details[f"matmul {name}"] = f"n={size}"
                tick(f"matmul {name}")
            for name in names:
                if name != "tfloat32":
                    vector[name] = _vector_rate(dev, bench, name)
                tick(f"vector {name}")
            bandwidth = _copy_rate(dev, bench)
            tick("copy")
            with _backend_flags(dev, False):  # as measure runs: cuDNN autotuned, no TF32
                overheads, launch = _overheads(dev, bench, names)
                tick("overhead")
                ceilings = (matmul, vector, bandwidth, overheads)
                dtype_kernels, per_dtype = _kernel_efficiencies(dev, bench, names, ceilings)
                kernels, kernels_memory = _over_dtypes(dtype_kernels)
            details.update(per_dtype)
            tick("kernel classes")
    except ModelmeterError:
        raise
    except torch.cuda.OutOfMemoryError as e:
        raise ModelRunError(f"out of memory on {dev} while calibrating: {first_line(e)}") from None
    except RuntimeError as e:
        raise ModelRunError(f"calibration failed on {dev}: {first_line(e)}") from None
    details["copy"] = f"{plan.copy_numel * 4 >> 20} MiB"
    if dev.type == "cpu":
        details["threads"] = torch.get_num_threads()
    unstable = [
        f"{label} varied {ratio:.1f}x between rounds"
        for label, ratio in bench.spread.items()
        if ratio > UNSTABLE
    ]
    return Calibration(
        device=str(dev),
        device_name=device_name(dev),
        torch_version=f"torch {torch.__version__}",
        vendor=_vendor(dev),
        kind={"cuda": "gpu", "mps": "soc"}.get(dev.type, "cpu"),
        matmul=matmul,
        vector=vector,
        bandwidth=bandwidth,
        kernel_overhead=next(iter(overheads.values())),
        launch_overhead=launch,
        kernels=kernels,
        kernels_memory=kernels_memory,
        overheads=overheads,
        dtype_kernels=dtype_kernels,
        capacity=_capacity(dev),
        details=details,
        warnings=unstable,
    )


def _matmul_rate(dev: torch.device, bench: _Bench, name: str) -> tuple[float, int]:
    """Best counted FLOP/s of square ``torch.mm`` over the plan's sizes (and that size)."""
    dt = torch.float32 if name == "tfloat32" else torch_dtype(name)
    best, best_n = 0.0, 0
    with tf32_allowed(name == "tfloat32"):
        for n in bench.plan.matmul_sizes:
            a = torch.randn(n, n, device=dev).to(dt)
            b = torch.randn(n, n, device=dev).to(dt)
            out = torch.empty(n, n, device=dev, dtype=dt)
            # n x n x n multiply-adds; the exact convention counts n*n*(2n-1) FLOPs
            flops = n * n * (2 * n - 1)
            t0 = time.perf_counter()
            seconds = bench.best(f"matmul {name}", lambda a=a, b=b, o=out: torch.mm(a, b, out=o))
            rate = flops / seconds
            if rate > best:
                best, best_n = rate, n
            del a, b, out
            if time.perf_counter() - t0 > bench.plan.budget_s:
                break  # the next size would take too long
    return best, best_n


def _vector_rate(dev: torch.device, bench: _Bench, name: str) -> float:
    """Best counted FLOP/s of elementwise ops (add; tanh-GELU, 9 FLOPs per element) on a
    tensor large enough to occupy the device: on a CPU small enough to stay in cache, on a
    GPU large enough that each call outlasts its launch (then the GELU is bound by DRAM
    bandwidth, so the figure is a floor, and an op with GELU's FLOPs per byte or fewer is
    not predicted compute-bound)."""
    dt = torch_dtype(name)
    x = torch.randn(bench.plan.vector_numel, device=dev).to(dt)
    out = torch.empty_like(x)
    best = 0.0
    cases: list[tuple[Callable[..., Any], Callable[[], Any]]] = [
        (torch.add, lambda: torch.add(x, x, out=out)),
        (
            lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
            lambda: torch.nn.functional.gelu(x, approximate="tanh"),
        ),
    ]
    for traced, fn in cases:
        flops = _counted_flops(traced, x, x) if traced is torch.add else _counted_flops(traced, x)
        best = max(best, flops / bench.best(f"vector {name}", fn))
    return best


def _copy_rate(dev: torch.device, bench: _Bench) -> float:
    """Bytes read + written per second of a large float32 tensor copy."""
    src = torch.randn(bench.plan.copy_numel, device=dev)
    dst = torch.empty_like(src)
    seconds = bench.best("copy", lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / seconds


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


def _kernel_efficiencies(
    dev: torch.device,
    bench: _Bench,
    names: list[str],
    ceilings: tuple[dict[str, float], dict[str, float], float, dict[str, float]],
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, str]]:
    """Per kernel class, the fraction of its roofline time the device attains; for ``conv``
    also the memory side apart (a second, memory-heavy convolution).

    Each benchmark op is analysed (on meta, the analysis' own formulas) and its roofline busy
    time, max(compute, memory), computed on the ceilings just measured; the fraction is that
    over the measured time (less the per-op overhead where launches do not overlap
    execution), kept within [0.01, 1]. Measured in every calibrated dtype (TF32 aside):
    returns each dtype's figures (class -> (compute, memory)) and the details.
    """
    import modelmeter
    from modelmeter.analysis.roofline import roofline
    from modelmeter.hardware import HardwareSpec

    matmul, vector, bandwidth, overheads = ceilings
    spec = HardwareSpec(
        name="calibrating",
        display_name="calibrating",
        vendor="-",
        kind="cpu",
        bandwidth=bandwidth,
        compute={k: v for k, v in matmul.items() if k != "tfloat32"} or dict(matmul),
        vector=dict(vector),
    )
    n, c, h, w = bench.plan.kernel_shape
    # back-to-back calls: a queue (CUDA, MPS) hides each launch behind the kernel before
    # it; a CPU pays it every call
    overlap = dev.type in ("cuda", "mps")
    details: dict[str, str] = {}
    own: dict[str, dict[str, tuple[float, float]]] = {}
    for name in (d for d in names if d != "tfloat32"):
        dt = torch_dtype(name)
        overhead = overheads[name]
        mine = own.setdefault(name, {})
        x = torch.randn(n, c, h, w, device=dev).to(dt)
        for cls, fn in KERNEL_BENCHMARKS.items():
            arg = _kernel_args(cls, c, dev, dt)
            meta = (torch.empty_like(x, device="meta"), torch.empty_like(arg, device="meta"))
            report = modelmeter.analyze(fn, meta)
            busy = roofline(report, spec).latency_s
            measured = bench.best(f"{cls} {name}", lambda fn=fn, x=x, arg=arg: fn(x, arg))
            device_s = measured if overlap else measured - overhead
            frac = min(1.0, max(0.01, busy / max(device_s, 1e-12)))
            mine[cls] = (frac, frac)
            details[f"{cls} {name}"] = f"{frac:.3g}"
        del x
        # the memory side of convolutions: a 1x1 convolution with few channels, which the
        # roofline puts below the ridge (NCHW libraries reorder its data around a small
        # matrix product); with the compute side just measured, what is left is memory
        xs = torch.randn(n, c // 4, 2 * h, 2 * w, device=dev).to(dt)
        ws = torch.randn(c // 4, c // 4, 1, 1, device=dev).to(dt)
        meta = (torch.empty_like(xs, device="meta"), torch.empty_like(ws, device="meta"))
        (t,) = roofline(modelmeter.analyze(torch.nn.functional.conv2d, meta), spec).ops
        measured = bench.best(
            f"conv memory {name}", lambda xs=xs, ws=ws: torch.nn.functional.conv2d(xs, ws)
        )
        device_s = max(measured if overlap else measured - overhead, 1e-12)
        kc = mine["conv"][0]
        if t.compute_s / kc < device_s:
            km = min(1.0, max(0.01, t.memory_s / device_s))
        else:  # compute alone explains the time: the memory side is not what limits it
            km = kc
        mine["conv"] = (kc, km)
        details[f"conv memory {name}"] = f"{km:.3g}"
        del xs, ws
    details["kernel classes"] = (
        f"NCHW {n}x{c}x{h}x{w}, 3x3; conv memory: {n}x{c // 4}x{2 * h}x{2 * w}, 1x1"
    )
    return own, details


def _over_dtypes(
    own: dict[str, dict[str, tuple[float, float]]],
) -> tuple[dict[str, float], dict[str, float]]:
    """The general ``[efficiency.kernels]``: per class, the geometric mean over the dtypes of
    the compute side, and of the memory side where it differs (conv)."""
    sides: dict[str, list[tuple[float, float]]] = {}
    for table in own.values():
        for cls, pair in table.items():
            sides.setdefault(cls, []).append(pair)
    compute = {cls: _geomean([c for c, _ in p]) for cls, p in sides.items()}
    memory = {
        cls: _geomean([m for _, m in p]) for cls, p in sides.items() if any(c != m for c, m in p)
    }
    return compute, memory


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _overheads(
    dev: torch.device, bench: _Bench, names: list[str]
) -> tuple[dict[str, float], float]:
    """({dtype: seconds per counted op of a tiny conv/BN/ReLU model in that dtype}, seconds
    per tiny add).

    The first is what the roofline charges per op record: the model's median forward time
    over the number of op records its analysis holds (their compute and memory time is
    negligible at these sizes). It differs per dtype where libraries do more on the host for
    one (cuDNN's bfloat16 convolutions launch layout conversions). The dtypes' rounds are
    interleaved, so a clock that drifts during the run shifts them alike. Both are medians
    over rounds of back-to-back calls. TF32 is a float32 setting, not an op dtype: skipped.
    """
    import modelmeter

    timer = bench.timer
    x = torch.ones(1, device=dev)
    y = torch.empty_like(x)
    rounds = max(5, bench.plan.rounds)
    adds = [timer.time(lambda: torch.add(x, x, out=y), 200) for _ in range(rounds)]
    layers: list[torch.nn.Module] = []
    for _ in range(8):
        layers += [torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU()]
    tiny = torch.nn.Sequential(*layers).eval()
    inp = torch.randn(1, 4, 8, 8)
    report = modelmeter.analyze(tiny, inp)
    n_ops = max(1, sum(len(node.ops) for node in report.modules()))
    dtypes = [d for d in names if d != "tfloat32"] or ["float32"]
    cases: dict[str, tuple[torch.nn.Module, torch.Tensor]] = {}
    for name in dtypes:
        dt = torch_dtype(name)
        model = copy.deepcopy(tiny).to(device=dev, dtype=dt)
        arg = inp.to(device=dev, dtype=dt)
        for _ in range(3):
            model(arg)
        cases[name] = (model, arg)
    per_forward: dict[str, list[float]] = {name: [] for name in dtypes}
    for _ in range(rounds):
        for name, (model, arg) in cases.items():
            per_forward[name].append(timer.time(lambda m=model, a=arg: m(a), 20))
    out: dict[str, float] = {}
    for name, times in per_forward.items():
        bench.spread[f"overhead {name}"] = quantile(times, 0.5) / min(times)
        out[name] = quantile(times, 0.5) / n_ops
    return out, quantile(adds, 0.5)


__all__ = ["calibrate"]
