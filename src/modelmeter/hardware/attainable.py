"""Attainable figures beside a chip's datasheet peaks, and the runtimes a model may run under.

A spec file's ``[attainable]`` section holds what real kernels reach on the chip (best square
matmul per dtype, copy bandwidth, eager per-op host time, per-kernel launch time, per-class
efficiencies), each section saying where its figures came from: ``basis = "measured"`` (with
the software in ``source``) or ``"estimated"`` (carried over from a measured chip of the same
family, with its ``uncertainty``). Predictions use them by default; ``--ideal`` prices the
datasheet figures at efficiency 1.0 (``HardwareSpec.ideal``). The tables mirror the top
level's (``[attainable.compute]`` like ``[compute]`` ...): a figure not given keeps the
datasheet's.

:class:`KernelTables` is the per-class efficiency lookup both a spec and its attainable
section use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Execution modes: eager PyTorch issues every kernel from the host (``[overhead] kernel`` per
# op); CUDA graphs / torch.compile replay a captured graph (no per-kernel host cost); ort is
# onnxruntime's own per-node cost (``[overhead.runtimes] ort``).
RUNTIMES = ("eager", "graphs", "ort")
# Where a section's figures came from.
BASES = ("measured", "estimated")


# A kernel class a table does not name takes its parent's figures: a grouped convolution is
# priced as a convolution by a file that measured only ``conv`` (modelmeter calibrate's), a
# decode step's attention as the fused attention kernel by a file without its own figure.
PARENT_CLASS = {"grouped": "conv", "attention-decode": "attention"}
# The depthwise kernel modelmeter calibrate measures is 3x3: 9 taps (frontends/torch/benchmarks.py).
CALIBRATED_TAPS = 9


def frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


def entry(compute: float, memory: float) -> float | dict[str, float]:
    """A kernel class's figures as a spec file writes them: one number where both sides are
    the same, else ``{compute, memory}``."""
    return compute if compute == memory else {"compute": compute, "memory": memory}


class KernelTables:
    """Per-kernel-class attainable fractions: ``kernel_efficiency`` (compute side, and memory
    side unless ``kernel_memory`` gives it apart) and ``dtype_kernels`` (per op dtype, over
    them)."""

    kernel_efficiency: Mapping[str, float]
    kernel_memory: Mapping[str, float]
    dtype_kernels: Mapping[str, Mapping[str, tuple[float, float]]]
    depthwise_taps: Mapping[str, float]

    def kernel_factors(self, kernel_class: str, dtype: str | None = None) -> tuple[float, float]:
        """The attainable fractions of the compute and the memory ceiling for ops of
        ``kernel_class`` in ``dtype``: ``[efficiency.dtypes.<dtype>]`` where it gives the class,
        else ``[efficiency.kernels]``, else its parent class's (:data:`PARENT_CLASS`), else
        1.0."""
        own = self.dtype_kernels.get(dtype or "", {})
        if kernel_class in own:
            return own[kernel_class]
        if kernel_class in self.kernel_efficiency or kernel_class in self.kernel_memory:
            compute = self.kernel_efficiency.get(kernel_class, 1.0)
            return compute, self.kernel_memory.get(kernel_class, compute)
        if kernel_class in PARENT_CLASS:
            return self.kernel_factors(PARENT_CLASS[kernel_class], dtype)
        return 1.0, 1.0

    def taps_factor(self, dtype: str | None, taps: int) -> float:
        """What a depthwise convolution of ``taps`` taps per output (3x3: 9) multiplies its
        class's compute fraction by: ``(taps / 9) ** a`` with ``a`` the dtype's
        ``depthwise_taps`` exponent (none given: a factor of 1, every size at the 3x3's rate). The class's
        fraction was measured on a 3x3 kernel; a = 0 prices a 7x7 kernel's 49/9 more FLOPs at
        the same rate, a = 1 in the same time per output (its FLOPs at a 49/9 higher rate)."""
        a = self.depthwise_taps.get(dtype or "", 0.0)
        return (taps / CALIBRATED_TAPS) ** a if a and taps > 0 else 1.0

    def kernels_table(self, dtype: str | None = None) -> dict[str, float | dict[str, float]]:
        """``[efficiency.kernels]`` as the file writes it. With ``dtype``: the factors ops in
        that dtype get (its own ``[efficiency.dtypes]`` table over the general one)."""
        own = self.dtype_kernels.get(dtype or "", {})
        classes = {**self.kernel_efficiency, **self.kernel_memory, **own}
        return {cls: entry(*self.kernel_factors(cls, dtype)) for cls in classes}

    def dtype_kernels_table(self, dtype: str) -> dict[str, float | dict[str, float]]:
        """``[efficiency.dtypes.<dtype>]`` alone, as the file writes it."""
        return {cls: entry(*pair) for cls, pair in self.dtype_kernels.get(dtype, {}).items()}


@dataclass(frozen=True)
class Attainable(KernelTables):
    """A spec's ``[attainable]`` section. None / empty: the datasheet's figure holds.

    Checked by the schema with the spec that holds it (``HardwareSpec.__post_init__``)."""

    basis: str = "measured"
    source: str = ""
    uncertainty: str = ""
    bandwidth: float | None = None
    compute: Mapping[str, float] = field(default_factory=dict)
    vector: Mapping[str, float] = field(default_factory=dict)
    kernel_overhead: float | None = None
    launch_overhead: float | None = None
    launch_classes: Mapping[str, float] = field(default_factory=dict)
    module_call: float | None = None
    dtype_overhead: Mapping[str, float] = field(default_factory=dict)
    runtime_overhead: Mapping[str, float] = field(default_factory=dict)
    kernel_efficiency: Mapping[str, float] = field(default_factory=dict)
    kernel_memory: Mapping[str, float] = field(default_factory=dict)
    dtype_kernels: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    depthwise_taps: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("compute", "vector", "dtype_overhead", "runtime_overhead", "launch_classes",
                     "kernel_efficiency", "kernel_memory", "depthwise_taps"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        object.__setattr__(
            self, "dtype_kernels",
            MappingProxyType({d: frozen(t) for d, t in self.dtype_kernels.items()}),
        )

    def overlay(self, spec: Any) -> dict[str, Any]:
        """The HardwareSpec fields these figures replace in ``spec`` (a figure not given keeps
        the spec's; kernel tables and the per-dtype overheads are replaced whole when given,
        so that a datasheet table never mixes into a measured one)."""
        out: dict[str, Any] = {
            "compute": {**spec.compute, **self.compute},
            "vector": {**spec.vector, **self.vector},
            "runtime_overhead": {**spec.runtime_overhead, **self.runtime_overhead},
        }
        if self.bandwidth is not None:
            out["bandwidth"] = self.bandwidth
        if self.kernel_overhead is not None:
            out["kernel_overhead"] = self.kernel_overhead
            out["dtype_overhead"] = self.dtype_overhead
        elif self.dtype_overhead:
            out["dtype_overhead"] = {**spec.dtype_overhead, **self.dtype_overhead}
        if self.launch_overhead is not None:
            out["launch_overhead"] = self.launch_overhead
        if self.launch_classes:  # replaced whole: a datasheet class never mixes in
            out["launch_classes"] = self.launch_classes
        if self.module_call is not None:
            out["module_call"] = self.module_call
        if self.kernel_efficiency or self.kernel_memory or self.dtype_kernels or \
                self.depthwise_taps:  # the efficiency tables, replaced together
            out["kernel_efficiency"] = self.kernel_efficiency
            out["kernel_memory"] = self.kernel_memory
            out["dtype_kernels"] = self.dtype_kernels
            out["depthwise_taps"] = self.depthwise_taps
        return out

    def label(self) -> str:
        """One line: what the figures are and where they came from."""
        text = f"attainable ({self.basis}"
        text += f": {self.source})" if self.source else ")"
        return text + (f"; uncertainty {self.uncertainty}" if self.uncertainty else "")


__all__ = ["Attainable", "BASES", "CALIBRATED_TAPS", "KernelTables", "PARENT_CLASS", "RUNTIMES",
           "entry", "frozen"]
