"""The device time of one tiny op per kernel class on a CUDA device (``modelmeter calibrate``:
the launch time per kernel class, ``[overhead.launch_classes]``).

Each class's op is captured ``copies`` times into one CUDA graph and the graph replayed: a
replay issues every kernel at once, so no host time is in the figure, only what the device
spends per op (its launch, its minimum kernel time and the op's tiny work). The use case
(:mod:`modelmeter.hardware.calibrate_launch`) subtracts the op's roofline busy time. Only
CUDA has graphs: elsewhere (a CPU pays each op's overhead in series, the per-op overhead
already holds it) there is nothing to measure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from modelmeter.frontends.torch.timing import Timer

LaunchCase = tuple[Callable[..., Any], tuple[torch.Tensor, ...]]
"""(the op, its arguments: on the device to time it, or on the CPU to analyse it, where the
tracer dispatches scaled_dot_product_attention as the fused kernel, as a model's trace does;
on meta it would decompose)"""


def _conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, padding=1)


def _layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), w, b)


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cat([a, b])


def _sum(x: torch.Tensor) -> torch.Tensor:
    return x.sum(-1)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, 1)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


# class -> (op, argument shapes): a decode-sized token block (16 x 768 / 4096), a small
# feature map (1 x 64 x 8 x 8), 16 query positions of 12 heads for attention
LAUNCH_CASES: dict[str, tuple[Callable[..., Any], tuple[tuple[int, ...], ...]]] = {
    "elementwise": (torch.add, ((16, 4096), (16, 4096))),
    "activation": (torch.relu, ((16, 4096),)),
    "movement": (_cat, ((16, 768), (16, 768))),
    "reduce": (_sum, ((16, 4096),)),
    "norm": (_layer_norm, ((16, 768), (768,), (768,))),
    "matmul": (torch.mm, ((16, 768), (768, 768))),
    "conv": (_conv, ((1, 64, 8, 8), (64, 64, 3, 3))),
    "pool": (_pool, ((1, 64, 8, 8),)),
    "attention": (_attention, ((1, 12, 16, 64),) * 3),
}


def launch_cases(dev: torch.device, dtype: torch.dtype) -> Iterator[tuple[str, LaunchCase,
                                                                          LaunchCase]]:
    """(class, the case on ``dev``, the same on the CPU to analyse) for every class of
    LAUNCH_CASES."""
    for cls, (fn, shapes) in LAUNCH_CASES.items():
        args = tuple(torch.randn(s, device=dev, dtype=dtype) for s in shapes)
        host = tuple(torch.zeros(s, dtype=dtype) for s in shapes)
        yield cls, (fn, args), (fn, host)


def graph_time(case: LaunchCase, timer: Timer, copies: int = 50, replays: int = 10,
               rounds: int = 5) -> float:
    """Median device seconds per op: ``copies`` calls of the case captured into one CUDA
    graph (after warm-up calls on a side stream, so that cuDNN has chosen its kernels), the
    graph replayed ``replays`` times per round."""
    fn, args = case
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*args)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(copies):
            fn(*args)
    graph.replay()
    times = [timer.time(graph.replay, replays) / copies for _ in range(rounds)]
    return statistics.median(times)


__all__ = ["LAUNCH_CASES", "LaunchCase", "graph_time", "launch_cases"]
