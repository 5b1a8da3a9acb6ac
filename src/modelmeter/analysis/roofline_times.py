"""Roofline times: of one op (:class:`OpTime`) and summed over a module's subtree or the
model (:class:`ModuleTime`), with the bound each op and module is under. The analysis that
fills them is :mod:`modelmeter.analysis.roofline`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True, slots=True)
class OpTime:
    """Roofline time of one op call."""

    op: str
    module: str
    dtype: str
    flops: int
    bytes: int
    compute_s: float
    memory_s: float
    overhead_s: float
    latency_s: float
    bound: str
    arithmetic_intensity: float
    phase: str = "forward"
    unit: str = "matrix"
    peak: float = 0.0
    peak_key: str = ""
    kernel_class: str = ""
    kernel_efficiency: float = 1.0
    kernel_memory_efficiency: float = 1.0
    # overhead_s = host_s + launch_s: the host's issue time the device waited for (all of it
    # where launches run in series) and the kernel's own launch time on the device
    host_s: float = 0.0
    launch_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "module": self.module,
            "phase": self.phase,
            "dtype": self.dtype,
            "unit": self.unit,
            "peak_key": self.peak_key,
            "kernel_class": self.kernel_class,
            "kernel_efficiency": self.kernel_efficiency,
            "kernel_memory_efficiency": self.kernel_memory_efficiency,
            "flops": self.flops,
            "bytes": self.bytes,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "overhead_s": self.overhead_s,
            "host_s": self.host_s,
            "launch_s": self.launch_s,
            "latency_s": self.latency_s,
            "bound": self.bound,
            "arithmetic_intensity": self.arithmetic_intensity,
        }


@dataclass(frozen=True, slots=True)
class ModuleTime:
    """Summed roofline times of a set of ops (a module's subtree, or the model).

    ``peak`` is the reference peak utilization is measured against (the model's, for every
    module, so that rows compare). ``*_bound_s`` split the latency by the ops' bound.
    """

    name: str
    compute_s: float = 0.0
    memory_s: float = 0.0
    overhead_s: float = 0.0
    latency_s: float = 0.0
    flops: int = 0
    bytes: int = 0
    kernels: int = 0
    compute_bound: int = 0
    memory_bound: int = 0
    overhead_bound: int = 0
    compute_bound_s: float = 0.0
    memory_bound_s: float = 0.0
    overhead_bound_s: float = 0.0
    peak: float = 0.0

    def add(self, t: OpTime) -> ModuleTime:
        """A new ModuleTime with one more op (the fields spelled out: the roofline calls this
        once per op and context)."""
        b, lat = t.bound, t.latency_s
        return ModuleTime(
            self.name,
            self.compute_s + t.compute_s,
            self.memory_s + t.memory_s,
            self.overhead_s + t.overhead_s,
            self.latency_s + lat,
            self.flops + t.flops,
            self.bytes + t.bytes,
            self.kernels + 1,
            self.compute_bound + (b == "compute"),
            self.memory_bound + (b == "memory"),
            self.overhead_bound + (b == "overhead"),
            self.compute_bound_s + (lat if b == "compute" else 0),
            self.memory_bound_s + (lat if b == "memory" else 0),
            self.overhead_bound_s + (lat if b == "overhead" else 0),
            self.peak,
        )

    @property
    def bound(self) -> str:
        """The bound that takes most of the latency ("none" without ops)."""
        if not self.kernels:
            return "none"
        shares = [getattr(self, f"{b}_bound_s") for b in BOUNDS]
        return BOUNDS[shares.index(max(shares))]

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per byte moved (0 when nothing moves)."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def achieved(self) -> float:
        """FLOP/s achieved: FLOPs / latency (0 without latency)."""
        return self.flops / self.latency_s if self.latency_s else 0.0

    @property
    def utilization(self) -> float:
        """Achieved FLOP/s over the reference peak (a fraction, 0..1)."""
        return self.achieved / self.peak if self.peak else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_s": self.latency_s,
            "compute_s": self.compute_s,
            "memory_s": self.memory_s,
            "overhead_s": self.overhead_s,
            "bound": self.bound,
            "arithmetic_intensity": self.arithmetic_intensity,
            "utilization": self.utilization,
            "achieved_flops_per_s": self.achieved,
            "kernels": self.kernels,
            "bound_kernels": {b: getattr(self, f"{b}_bound") for b in BOUNDS},
            "bound_latency_s": {b: getattr(self, f"{b}_bound_s") for b in BOUNDS},
        }


def bound_of(compute: float, memory: float, overhead: float) -> str:
    """The bound of one op: overhead where it exceeds both ceilings' times, else the larger
    of compute and memory."""
    if overhead > max(compute, memory):
        return "overhead"
    return "compute" if compute >= memory and compute > 0 else "memory"


def sum_times(name: str, parts: list[ModuleTime], peak: float) -> ModuleTime:
    """The parts' times and counts added (each field with ``sum``, in the parts' order)."""
    columns = zip(
        *(
            (p.compute_s, p.memory_s, p.overhead_s, p.latency_s, p.flops, p.bytes, p.kernels,
             p.compute_bound, p.memory_bound, p.overhead_bound, p.compute_bound_s,
             p.memory_bound_s, p.overhead_bound_s)  # fmt: skip
            for p in parts
        ),
        strict=True,
    )
    sums = [sum(column) for column in columns] if parts else [0] * 13
    return ModuleTime(name, *sums, peak=peak)


def waits(ops: list[OpTime], interval: float | None = None) -> list[float]:
    """How long a device that overlaps launches with execution waits for each op, in order:
    the host spends each op's own issue time (its overhead less its launch time; or
    ``interval`` for every op) issuing it, so kernel i is issued when the issue times of ops
    1..i are spent; the device starts it when it is issued and kernel i-1 is done, and runs
    it for its launch time plus its busy time."""
    out: list[float] = []
    finish = issued = 0.0
    for t in ops:
        busy = t.latency_s - t.overhead_s
        issued += t.overhead_s - t.launch_s if interval is None else interval
        wait = max(0.0, issued - finish)
        finish += wait + t.launch_s + busy
        out.append(wait)
    return out


def waited_latency(t: OpTime, wait: float) -> tuple[float, float]:
    """(overhead, latency) of ``t`` once the device waited ``wait`` for it: the wait plus its
    launch time, and that plus its busy time."""
    overhead = wait + t.launch_s
    return overhead, overhead + (t.latency_s - t.overhead_s)


def requeued(t: OpTime, wait: float) -> OpTime:
    """``t`` as a queue that overlaps launches with execution runs it: its overhead becomes
    the time the device ``wait``-ed for it plus its launch time (the fields spelled out, which
    is several times faster than ``dataclasses.replace``)."""
    overhead, latency = waited_latency(t, wait)
    return OpTime(
        t.op, t.module, t.dtype, t.flops, t.bytes, t.compute_s, t.memory_s, overhead,
        latency, bound_of(t.compute_s, t.memory_s, overhead), t.arithmetic_intensity,
        t.phase, t.unit, t.peak, t.peak_key, t.kernel_class, t.kernel_efficiency,
        t.kernel_memory_efficiency, wait, t.launch_s,
    )  # fmt: skip


__all__ = ["BOUNDS", "OpTime", "ModuleTime", "bound_of", "requeued", "sum_times", "waited_latency", "waits"]
