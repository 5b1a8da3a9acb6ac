"""Measured time per kernel class (``modelmeter measure --per-class``), with torch.profiler.

A forward call is profiled and every *top-level* ATen op (one not called from inside another
ATen op: ``aten::conv2d``, ``aten::batch_norm``, ``aten::linear`` ...) is put in the kernel
class the roofline uses (docs/hardware.md): the formula family of the first op in its call
tree that has a formula (``aten::conv2d`` -> ``aten::convolution`` -> ``conv``), a
convolution with one input channel per group being ``depthwise``; ``other`` when none has
one. Its time is the device time of the kernels it launched (CUDA) or its inclusive host
time (CPU: dispatch included, as the roofline charges a CPU op its overhead).

Two profiles: one call with input shapes recorded, to tell depthwise convolutions apart
(recording shapes slows CPU ops by about a third), then ``runs`` calls without, for the times.
The two see the same sequence of top-level ops, so classes carry over by position.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from modelmeter.analysis.classes import ClassMeasured, ClassProfile
from modelmeter.analysis.kernels import kernel_class
from modelmeter.frontends.torch.device import synchronize
from modelmeter.registry import family_of


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ log lines (written straight to file descriptor 2)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded, captured): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _top_level(events: Any) -> list[Any]:
    """Top-level ATen ops in start order."""
    tops = [
        e
        for e in events
        if e.name.startswith("aten::")
        and not _has_aten_ancestor(e)
        and e.device_type == torch.autograd.DeviceType.CPU
    ]
    return sorted(tops, key=lambda e: e.time_range.start)


def _has_aten_ancestor(e: Any) -> bool:
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith("aten::"):
            return True
        p = p.cpu_parent
    return False


@functools.cache
def _composite(name: str, overload: str) -> bool:
    """Whether the op decomposes into others before dispatch (CompositeImplicitAutograd:
    ``aten::conv2d``, ``aten::linear``): the analysis records what it decomposes into."""
    for qualified in (f"{name}.{overload}" if overload else name, name):
        try:
            return torch._C._dispatch_has_kernel_for_dispatch_key(
                qualified, "CompositeImplicitAutograd"
            )
        except RuntimeError:  # an overloaded name needs its overload
            continue
    return False


def classify(e: Any) -> str:
    """The kernel class of a top-level op, as the analysis would record it: the formula
    family of the first op in its call tree (breadth first) that has a formula and does not
    decompose before dispatch (``aten::adaptive_avg_pool2d`` -> ``aten::mean``: reduce);
    ``depthwise`` for a depthwise convolution; ``other`` when none has a formula."""
    queue = [e]
    fallback = None
    while queue:
        node = queue.pop(0)
        key = "aten." + node.name.removeprefix("aten::")
        family = family_of(key)
        if family is not None:
            label = kernel_class(family, getattr(node, "input_shapes", None) or (), op=key)
            if not _composite(node.name, getattr(node, "overload_name", "") or ""):
                return label
            fallback = fallback or label
        queue.extend(node.cpu_children)
    return fallback or "other"


def _kernels(e: Any) -> int:
    """Device kernels launched by ``e`` and everything it called."""
    return len(getattr(e, "kernels", []) or []) + sum(_kernels(c) for c in e.cpu_children)


def profile_classes(
    call: Callable[[], Any], dev: torch.device, runs: int, *, quiet: bool = True
) -> ClassProfile:
    """Profile ``call`` (already warmed up) and sum its top-level ops' times per class."""
    from torch.profiler import ProfilerActivity, profile

    cuda = dev.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    hush = _quiet_stderr() if quiet else contextlib.nullcontext()
    with hush:
        with profile(activities=activities, record_shapes=True) as shaped:
            call()
            synchronize(dev)
        classes = [classify(e) for e in _top_level(shaped.events())]
        walls: list[float] = []
        with profile(activities=activities) as timed:
            for _ in range(runs):
                t0 = time.perf_counter()
                call()
                synchronize(dev)
                walls.append(time.perf_counter() - t0)
        tops = _top_level(timed.events())
    per_call = len(classes)
    notes: list[str] = []
    if per_call == 0 or len(tops) != per_call * runs:
        notes.append(
            "the profiled calls ran different op sequences: depthwise convolutions are "
            "counted as conv"
        )
        labels = [classify(e) for e in tops]  # no shapes recorded: depthwise reads as conv
    else:
        labels = [classes[i % per_call] for i in range(len(tops))]
    seconds: dict[str, float] = {}
    ops: dict[str, int] = {}
    kernels: dict[str, int] = {}
    for label, e in zip(labels, tops, strict=True):
        t = e.device_time_total if cuda else e.cpu_time_total  # microseconds
        seconds[label] = seconds.get(label, 0.0) + t * 1e-6
        ops[label] = ops.get(label, 0) + 1
        kernels[label] = kernels.get(label, 0) + (_kernels(e) if cuda else 0)
    measured = [
        ClassMeasured(
            kernel_class=label,
            seconds=seconds[label] / runs,
            ops=ops[label] / runs,
            kernels=kernels[label] / runs if cuda else None,
        )
        for label in sorted(seconds, key=lambda k: -seconds[k])
    ]
    if cuda and tops and not any(seconds.values()):
        notes.append("the profiler recorded no kernel time (CUDA activity tracing failed?)")
    basis = "device kernel time" if cuda else "host time per op, dispatch included"
    if dev.type == "mps":
        basis = "host time per op (MPS runs ops asynchronously: this is their launch)"
    return ClassProfile(
        method="torch.profiler: top-level ATen ops, classed like the roofline's ops",
        basis=basis,
        runs=runs,
        profiled_s=sorted(walls)[len(walls) // 2],
        mean_s=sum(walls) / len(walls) if walls else 0.0,
        classes=measured,
        device_time=cuda,
        notes=notes,
    )


__all__ = ["profile_classes", "classify"]
