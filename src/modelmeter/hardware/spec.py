"""A chip as data: :class:`HardwareSpec` and the rule that picks the peak an op runs at.

Peaks are dense FLOP/s (OP/s for integer dtypes), per canonical dtype name. ``compute`` holds
the matrix units (tensor cores, MXU, NPU MAC arrays), ``vector`` the units that run everything
else (elementwise, norms, softmax). :func:`resolve_peak` is the one place that decides which
peak an op uses when the spec has no entry for its dtype (rules in docs/hardware.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from modelmeter.hardware.attainable import PARENT_CLASS, RUNTIMES, Attainable, KernelTables, frozen
from modelmeter.hardware.schema import KERNEL_CLASSES as KERNEL_CLASSES  # re-exported
from modelmeter.hardware.schema import KINDS as KINDS
from modelmeter.hardware.schema import check, to_dict

UNITS = ("matrix", "vector")
# Kinds whose kernels are launched into an asynchronous queue by default (CUDA streams, Metal
# command buffers): the host's per-kernel overhead overlaps the device's execution.
OVERLAP_KINDS = ("gpu", "soc")
INT_DTYPES = ("int8", "int4", "int16", "int32", "int64", "uint8", "uint4", "bool")
# Unsigned integer dtypes whose MACs run at the signed type's peak (datasheets give one figure).
_SIGNED = {"uint8": "int8", "uint4": "int4"}


_frozen = frozen


@dataclass(frozen=True)
class HardwareSpec(KernelTables):
    """One device. Figures are dense peaks in FLOP/s (OP/s for ints), bytes and seconds."""

    name: str
    display_name: str
    vendor: str
    kind: str
    bandwidth: float
    compute: Mapping[str, float] = field(default_factory=dict)
    vector: Mapping[str, float] = field(default_factory=dict)
    kernel_overhead: float = 0.0
    overlap: bool | None = None
    capacity: float | None = None
    cache: float | None = None
    efficiency_compute: float = 1.0
    efficiency_memory: float = 1.0
    kernel_efficiency: Mapping[str, float] = field(default_factory=dict)
    kernel_memory: Mapping[str, float] = field(default_factory=dict)
    # per dtype of the op, over the figures above: [overhead.dtypes], [efficiency.dtypes.D]
    dtype_overhead: Mapping[str, float] = field(default_factory=dict)
    dtype_kernels: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    verified: bool = False
    source: str = ""
    notes: str = ""
    path: str | None = field(default=None, compare=False)
    # device time every kernel takes on top of its roofline time, in any runtime ([overhead]
    # launch; None: 0), and per-op host time of runtimes other than eager ([overhead.runtimes])
    launch_overhead: float | None = None
    # [overhead.launch_classes]: per kernel class, its own launch time in place of the above
    launch_classes: Mapping[str, float] = field(default_factory=dict)
    runtime_overhead: Mapping[str, float] = field(default_factory=dict)
    attainable: Attainable | None = None  # [attainable]: what real kernels reach
    intra_link: str | None = None  # [interconnect] intra: a link of hardware/links.py
    inter_link: str | None = None  # [interconnect] inter: between nodes
    # [efficiency.taps]: per op dtype, the exponent of a depthwise kernel's size (taps_factor)
    depthwise_taps: Mapping[str, float] = field(default_factory=dict)
    # [overhead] module_call: eager's host time per nn.Module call (analysis/module_calls.py)
    module_call: float | None = None
    # [overhead] step: eager host time per step of a generation loop beyond the ops and the
    # module calls (analysis/generation_host.py; None: not measured, 0); generation only
    step_overhead: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.attainable, Mapping):  # as the loader reads it
            object.__setattr__(self, "attainable", Attainable(**self.attainable))
        check(self)  # the one validation, however the spec is made
        object.__setattr__(self, "runtime_overhead", _frozen(self.runtime_overhead))
        object.__setattr__(self, "launch_classes", _frozen(self.launch_classes))
        object.__setattr__(self, "compute", _frozen(self.compute))
        object.__setattr__(self, "vector", _frozen(self.vector))
        object.__setattr__(self, "kernel_efficiency", _frozen(self.kernel_efficiency))
        object.__setattr__(self, "kernel_memory", _frozen(self.kernel_memory))
        object.__setattr__(self, "dtype_overhead", _frozen(self.dtype_overhead))
        object.__setattr__(self, "depthwise_taps", _frozen(self.depthwise_taps))
        object.__setattr__(
            self,
            "dtype_kernels",
            MappingProxyType({d: MappingProxyType(dict(t)) for d, t in self.dtype_kernels.items()}),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.bandwidth, tuple(sorted(self.compute.items()))))

    # ---- derived figures ---------------------------------------------------------------
    def peak(self, dtype: str, unit: str = "matrix", *, tf32: bool = False) -> float:
        """The peak FLOP/s an op in ``dtype`` runs at on ``unit`` (fallbacks applied)."""
        return resolve_peak(self, dtype, unit, tf32=tf32).value

    @property
    def launches_overlap(self) -> bool:
        """Whether kernel launches overlap execution: ``[overhead] overlap``, else true for the
        kinds in OVERLAP_KINDS (GPUs queue kernels asynchronously; CPUs, NPUs and TPUs pay
        each kernel's overhead in series)."""
        return self.overlap if self.overlap is not None else self.kind in OVERLAP_KINDS

    def overhead_for(self, dtype: str | None = None) -> float:
        """The per-kernel overhead of an op in ``dtype``: ``[overhead.dtypes]``, else
        ``[overhead] kernel`` (host costs differ per dtype: cuDNN's bfloat16 convolutions
        launch layout-conversion kernels that float32 ones do not)."""
        return self.dtype_overhead.get(dtype or "", self.kernel_overhead)

    def host_overhead(self, dtype: str | None = None, runtime: str = "eager") -> float:
        """Host time to issue one op under ``runtime``: eager, :meth:`overhead_for`; graphs
        (CUDA graphs, torch.compile), ``[overhead.runtimes] graphs``, else 0 (one replay
        issues every kernel); ort, ``[overhead.runtimes] ort``, else eager's."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        if runtime in self.runtime_overhead:
            return self.runtime_overhead[runtime]
        return 0.0 if runtime == "graphs" else self.overhead_for(dtype)

    @property
    def launch_s(self) -> float:
        """Device time each kernel takes beyond its roofline time (``[overhead] launch``)."""
        return self.launch_overhead or 0.0

    def launch_for(self, kernel_class: str) -> float:
        """Device time a kernel of ``kernel_class`` takes beyond its roofline time:
        ``[overhead.launch_classes]``, else its parent class's there (a grouped convolution
        launches as a convolution), else ``[overhead] launch`` (the batch-1 profiles of an H100
        put an activation's at about 1 us and a convolution's, with its layout kernels, at
        about 10: docs/hardware.md)."""
        for cls in (kernel_class, PARENT_CLASS.get(kernel_class)):
            if cls in self.launch_classes:
                return self.launch_classes[cls]
        return self.launch_s

    @property
    def module_call_s(self) -> float:
        """Eager host time per module call (``[overhead] module_call``; None: 0)."""
        return self.module_call or 0.0

    def attained(self) -> HardwareSpec:
        """The spec with its ``[attainable]`` figures in place of the datasheet's (itself when
        it has none): what predictions use by default."""
        if self.attainable is None:
            return self
        return replace(self, attainable=None, **self.attainable.overlay(self))

    def ideal(self) -> HardwareSpec:
        """The pure datasheet roofline: no attainable figures, every efficiency 1.0; the
        top level's overheads stay (``[attainable.overhead]``'s go with the rest)."""
        return replace(self, attainable=None, efficiency_compute=1.0, efficiency_memory=1.0,
                       kernel_efficiency={}, kernel_memory={}, dtype_kernels={},
                       depthwise_taps={})

    def ridge_point(self, dtype: str, *, tf32: bool = False, effective: bool = True) -> float:
        """FLOPs per byte where the roofline turns: peak / bandwidth (both x efficiency)."""
        peak = self.peak(dtype, "matrix", tf32=tf32)
        if effective:
            return peak * self.efficiency_compute / (self.bandwidth * self.efficiency_memory)
        return peak / self.bandwidth

    def with_efficiency(
        self, compute: float | None = None, memory: float | None = None
    ) -> HardwareSpec:
        """A copy with other attainable fractions of peak compute and bandwidth."""
        return replace(
            self,
            efficiency_compute=self.efficiency_compute if compute is None else compute,
            efficiency_memory=self.efficiency_memory if memory is None else memory,
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as the TOML schema lays it out (numbers in base units)."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class PeakChoice:
    """The peak an op runs at, which table entry gave it, and a note when it is a fallback."""

    value: float
    key: str  # e.g. "compute.bfloat16", "vector.float32"
    note: str | None = None


def resolve_peak(spec: HardwareSpec, dtype: str, unit: str, *, tf32: bool = False) -> PeakChoice:
    """Pick the peak for work in ``dtype`` on ``unit`` ("matrix" for MAC ops, else "vector").

    Matrix (MAC) ops: ``compute[D]``; float32 with ``tf32``: ``compute.tfloat32``; then the
    vector rule. Vector ops: ``vector[D]``, then ``vector.float32``, then ``compute[D]``.
    Last resort: the largest ``compute`` peak, with a note (on an int8-only NPU: "assumed
    quantised to int8"). A plain float32 MAC op never uses TF32 unless asked.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(UNITS)}")
    D = dtype
    if unit == "matrix":
        if D in spec.compute:
            return PeakChoice(spec.compute[D], f"compute.{D}")
        signed = _SIGNED.get(D)
        if signed in spec.compute:  # uint8 runs on the int8 units at the int8 rate
            return PeakChoice(spec.compute[signed], f"compute.{signed}")
        if D == "float32" and tf32 and "tfloat32" in spec.compute:
            return PeakChoice(spec.compute["tfloat32"], "compute.tfloat32", "float32 MACs as TF32")
    if unit == "matrix" and D == "float32" and "float32" in spec.vector:
        hint = "; --tf32 allows TF32" if "tfloat32" in spec.compute else ""
        note = f"float32 MACs on the vector units (no TF32{hint})"
        return PeakChoice(spec.vector["float32"], "vector.float32", note)
    if D in spec.vector:
        note = f"{D} MACs on the vector units" if unit == "matrix" else None
        return PeakChoice(spec.vector[D], f"vector.{D}", note)
    if "float32" in spec.vector:
        what = "MACs" if unit == "matrix" else "vector work"
        note = None if D == "float32" else f"{D} {what} at the vector.float32 rate"
        return PeakChoice(spec.vector["float32"], "vector.float32", note)
    if unit == "vector" and D in spec.compute:
        note = f"no vector peak: {D} vector work at the matrix peak"
        return PeakChoice(spec.compute[D], f"compute.{D}", note)
    if not spec.compute:
        raise ValueError(f"hardware {spec.name!r} has no peak for {D} at all")
    floats = {k: v for k, v in spec.compute.items() if k not in INT_DTYPES}
    if floats:
        key, value = max(floats.items(), key=lambda kv: (kv[1], kv[0]))
        what = "MACs" if unit == "matrix" else "vector work"
        return PeakChoice(value, f"compute.{key}", f"no peak for {D} {what}: assumed {key}")
    key, value = max(spec.compute.items(), key=lambda kv: (kv[1], kv[0]))
    return PeakChoice(value, f"compute.{key}", f"assumed quantised to {key}")
