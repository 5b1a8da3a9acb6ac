"""The PyTorch device a model runs on: resolving its name, synchronising it, what it is
(name, vendor, memory) and the backend settings a timed run uses (cuDNN autotuning, TF32)."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from typing import Any

import torch

from modelmeter.errors import InputError
from modelmeter.host import cpu_info, cpu_name

DEVICES = ("cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:1`` or ``mps`` as a usable torch.device (InputError if not)."""
    try:
        dev = torch.device(str(name).strip())
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {name!r} is not available: this machine has no usable CUDA GPU "
                f"(torch {torch.__version__})"
            )
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise InputError(
                f"device {name!r} is not available: {torch.cuda.device_count()} CUDA GPU(s)"
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"device {name!r} is not available: no Apple MPS backend here")
        return dev
    if dev.type != "cpu":
        raise InputError(f"unsupported device {name!r}; use one of {', '.join(DEVICES)}")
    return torch.device("cpu")


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple {platform.machine()} (MPS)"
    return cpu_name()


def vendor(dev: torch.device) -> str:
    if dev.type == "cuda":
        return "AMD" if getattr(torch.version, "hip", None) else "NVIDIA"
    if dev.type == "mps":
        return "Apple"
    vid = cpu_info().get("vendor_id", "")
    return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(vid, vid or platform.machine())


def capacity(dev: torch.device) -> float | None:
    if dev.type == "cuda":
        return float(torch.cuda.get_device_properties(dev).total_memory)
    if dev.type == "mps":
        with contextlib.suppress(Exception):
            return float(torch.mps.recommended_max_memory())
        return None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return float(int(line.split()[1]) * 1024)
    return None


@contextlib.contextmanager
def backend_flags(dev: torch.device, tf32: bool) -> Iterator[None]:
    """cuDNN autotuning on and TF32 as asked, on CUDA only; restored afterwards."""
    if dev.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark
    cudnn.benchmark = True
    try:
        with tf32_allowed(tf32):
            yield
    finally:
        cudnn.benchmark = saved


@contextlib.contextmanager
def tf32_allowed(on: bool) -> Iterator[None]:
    """TF32 for float32 matmuls and convolutions on or off, restored afterwards. Works
    whichever API the process set TF32 with: once the newer ``fp32_precision`` settings are
    used, reading the legacy ``allow_tf32`` flags raises, so those settings are used then."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    try:
        (cudnn.allow_tf32, matmul.allow_tf32)  # noqa: B018 - raises under the newer API
        targets: list[tuple[Any, str, Any]] = [
            (cudnn, "allow_tf32", on),
            (matmul, "allow_tf32", on),
        ]
    except RuntimeError:
        mode = "tf32" if on else "ieee"
        targets = [(cudnn.conv, "fp32_precision", mode), (matmul, "fp32_precision", mode)]
    saved = [getattr(obj, key) for obj, key, _ in targets]
    for obj, key, value in targets:
        setattr(obj, key, value)
    try:
        yield
    finally:
        for (obj, key, _), value in zip(targets, saved, strict=True):
            setattr(obj, key, value)


__all__ = [
    "DEVICES",
    "backend_flags",
    "capacity",
    "device_name",
    "resolve_device",
    "synchronize",
    "tf32_allowed",
    "vendor",
]
