"""Measured latency joined to the analysis: achieved rates, predicted vs measured.

Pure: a frontend's runner produces :class:`~modelmeter.analysis.timings.Timings` (seconds,
as measured); :func:`summarize` joins them with the Report (and, given a chip, its Roofline)
of the same model, input and dtype into a :class:`MeasureResult`. :class:`Calibration` holds
the figures ``modelmeter calibrate`` measured. Nothing here imports a framework or touches a
device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.classes import PerClass, join_classes
from modelmeter.analysis.predicted import ModuleTiming, Prediction, module_timings, prediction
from modelmeter.analysis.roofline import Roofline, main_dtype
from modelmeter.analysis.timings import MemoryUse, Timings, TimingStats, timing_stats
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.report import Report

SCHEMA = "modelmeter.measure/1"

# ---- the joined result ---------------------------------------------------------------------


@dataclass(frozen=True)
class MeasureResult:
    """Measured latency and rates of one model, joined to its analysis (and a prediction)."""

    model: str
    device: str
    device_name: str
    torch_version: str
    timer: str
    dtype: str
    batch: int
    inputs: list[dict[str, Any]]
    warmup: int
    repeats: int
    threads: int | None
    latency: TimingStats
    flops: int
    macs: int
    bytes_moved: int
    kernels: int
    memory: MemoryUse
    tf32: bool = False
    prediction: Prediction | None = None
    peak: float | None = None
    bandwidth: float | None = None
    modules: list[ModuleTiming] = field(default_factory=list)
    hooked: TimingStats | None = None
    notes: list[str] = field(default_factory=list)
    page_faults: float | None = None
    page_size: int = 4096
    per_class: PerClass | None = None

    # ---- derived figures -------------------------------------------------------------------
    @property
    def throughput(self) -> float:
        """Samples per second: batch / median latency."""
        return self.batch / self.latency.median if self.latency.median else 0.0

    @property
    def achieved_flops(self) -> float:
        """FLOP/s achieved: the analysis' FLOPs / median latency."""
        return self.flops / self.latency.median if self.latency.median else 0.0

    @property
    def achieved_bandwidth(self) -> float:
        """Bytes/s achieved: the analysis' bytes read + written / median latency."""
        return self.bytes_moved / self.latency.median if self.latency.median else 0.0

    @property
    def compute_utilization(self) -> float | None:
        """Achieved FLOP/s over the chip's matrix peak for the model's main dtype."""
        return self.achieved_flops / self.peak if self.peak else None

    @property
    def bandwidth_utilization(self) -> float | None:
        """Achieved bytes/s over the chip's memory bandwidth."""
        return self.achieved_bandwidth / self.bandwidth if self.bandwidth else None

    @property
    def ratio(self) -> float | None:
        """Predicted (roofline) / measured median latency."""
        if self.prediction is None or not self.latency.median:
            return None
        return self.prediction.latency_s / self.latency.median

    @property
    def flops_only_ratio(self) -> float | None:
        """FLOPs-only estimate / measured median latency."""
        if self.prediction is None or not self.latency.median:
            return None
        return self.prediction.flops_only_s / self.latency.median

    @property
    def fresh_page_bytes(self) -> float | None:
        """Bytes of memory first touched per call (page faults x page size; CPU only)."""
        return None if self.page_faults is None else self.page_faults * self.page_size

    @property
    def hook_overhead(self) -> float | None:
        """Median forward time with per-module hooks over the time without (>= 1 usually)."""
        if self.hooked is None or not self.latency.median:
            return None
        return self.hooked.median / self.latency.median

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "device": self.device,
            "device_name": self.device_name,
            "torch_version": self.torch_version if self.torch_version.startswith("torch")
            else None,
            "runtime": self.torch_version,
            "timer": self.timer,
            "dtype": self.dtype,
            "tf32": self.tf32,
            "batch": self.batch,
            "inputs": list(self.inputs),
            "warmup": self.warmup,
            "repeats": self.repeats,
            "threads": self.threads,
            "page_faults_per_call": self.page_faults,
            "fresh_page_bytes_per_call": self.fresh_page_bytes,
            "latency": self.latency.to_dict(),
            "throughput_per_s": self.throughput,
            "analysis": {
                "flops": self.flops,
                "macs": self.macs,
                "bytes_moved": self.bytes_moved,
                "kernels": self.kernels,
            },
            "achieved_flops_per_s": self.achieved_flops,
            "achieved_bytes_per_s": self.achieved_bandwidth,
            "utilization": {
                "compute": self.compute_utilization,
                "bandwidth": self.bandwidth_utilization,
                "peak_flops_per_s": self.peak,
                "bandwidth_bytes_per_s": self.bandwidth,
            },
            "memory": self.memory.to_dict(),
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "predicted_over_measured": self.ratio,
            "flops_only_over_measured": self.flops_only_ratio,
            "per_module": None
            if self.hooked is None
            else {
                "method": "forward pre/post hooks with device synchronisation around every "
                "module call (serialises execution, adds overhead)",
                "hooked_latency": self.hooked.to_dict(),
                "hook_overhead": self.hook_overhead,
                "modules": [m.to_dict() for m in self.modules],
            },
            "per_class": None if self.per_class is None else self.per_class.to_dict(),
            "notes": list(self.notes),
        }


def _samples_per_call(report: Report) -> int:
    for spec in report.inputs:
        if spec.shape:
            return max(1, int(spec.shape[0]))
    return 1


_TRAINING = "the model is in training mode"


def _analysis_notes(notes: list[str], run_notes: list[str]) -> list[str]:
    """The analysis's notes less its training-mode one when the run already says it ran in
    training mode (one note, not two)."""
    if not any(n.startswith(_TRAINING) for n in run_notes):
        return list(notes)
    return [n for n in notes if not n.startswith(_TRAINING)]


def summarize(
    timings: Timings,
    report: Report,
    roof: Roofline | None = None,
    *,
    batch: int | None = None,
    dtype: str | None = None,
) -> MeasureResult:
    """Join measured ``timings`` with the ``report`` (and ``roof``, the Roofline of that same
    report on a chip) of the model that was measured.

    ``batch`` is the number of samples one forward call processes (default: the first
    dimension of the report's first input); ``dtype`` the measured dtype (default: the
    report's main dtype). Raises ValueError when ``timings`` holds no samples.
    """
    latency = timing_stats(timings.samples)
    forward = report.total("forward").cost
    kernels = sum(1 for node in report.modules() for rec in node.ops if rec.phase == "forward")
    spec: HardwareSpec | None = roof.spec if roof is not None else None
    return MeasureResult(
        model=report.model,
        device=timings.device,
        device_name=timings.device_name,
        torch_version=timings.torch_version,
        timer=timings.timer,
        dtype=dtype or main_dtype(report, "forward"),
        batch=batch if batch is not None else _samples_per_call(report),
        inputs=[i.to_dict() for i in report.inputs],
        warmup=timings.warmup,
        repeats=latency.n,
        threads=timings.threads,
        latency=latency,
        flops=forward.flops,
        macs=forward.macs,
        bytes_moved=forward.bytes_moved,
        kernels=kernels,
        memory=timings.memory,
        tf32=timings.tf32,
        prediction=prediction(roof, forward.flops) if roof is not None else None,
        peak=roof.peak if roof is not None else None,
        bandwidth=spec.bandwidth if spec is not None else None,
        modules=module_timings(timings, report, roof),
        hooked=timing_stats(timings.hooked_samples) if timings.hooked_samples else None,
        notes=[
            *timings.notes,
            *_page_fault_note(timings, forward.bytes_moved),
            *_analysis_notes(report.notes, timings.notes),
            *(roof.notes if roof is not None else []),
        ],
        page_faults=timings.page_faults,
        page_size=timings.page_size,
        per_class=(
            join_classes(timings.class_profile, report, roof)
            if timings.class_profile is not None
            else None
        ),
    )


# Fresh pages worth this share of the bytes the analysis moves earn a note.
PAGE_FAULT_NOTE_SHARE = 0.1


def _page_fault_note(timings: Timings, bytes_moved: int) -> list[str]:
    """A note when the timed calls kept faulting in fresh memory (CPU): eager PyTorch frees
    each op's output, glibc gives large blocks back to the OS (mmap/trim), and the next op
    pays to fault them in again, which no roofline models."""
    if not timings.page_faults or not bytes_moved:
        return []
    fresh = timings.page_faults * timings.page_size
    if fresh < PAGE_FAULT_NOTE_SHARE * bytes_moved:
        return []
    return [
        f"{timings.page_faults:,.0f} page faults per call ({fresh / 2**20:,.0f} MiB of fresh "
        f"memory, {fresh / bytes_moved:.0%} of the bytes the model moves): the C allocator "
        "returns freed memory to the OS and ops fault it in again, which the roofline does "
        "not model; with glibc, MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set high "
        "(e.g. 4294967296) in the environment, or jemalloc/tcmalloc, keep it"
    ]


# ---- calibration: measured ceilings as a hardware spec -------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Attainable figures measured on one device (``modelmeter calibrate``).

    ``matmul`` and ``vector`` map a canonical dtype to FLOP/s (counted as modelmeter counts
    them), ``bandwidth`` is copy bytes (read + written) per second, ``kernel_overhead`` the
    time per counted op of a tiny model in the first dtype (the roofline's per-kernel
    overhead), ``overheads`` the same per calibrated dtype, and ``launch_overhead`` the time
    of one tiny elementwise op, for reference. ``kernels`` / ``kernels_memory`` are the
    kernel classes' attainable fractions over all dtypes (geometric mean), ``dtype_kernels``
    each dtype's own (class -> (compute, memory)). ``warnings`` name figures whose timing
    rounds varied a lot (a busy device).
    """

    device: str
    device_name: str
    torch_version: str
    vendor: str
    kind: str
    matmul: dict[str, float]
    vector: dict[str, float]
    bandwidth: float
    kernel_overhead: float
    launch_overhead: float
    # CUDA: device seconds beyond the roofline per kernel class (hardware/calibrate_launch.py)
    launch_classes: dict[str, float] = field(default_factory=dict)
    kernels: dict[str, float] = field(default_factory=dict)
    kernels_memory: dict[str, float] = field(default_factory=dict)
    overheads: dict[str, float] = field(default_factory=dict)
    dtype_kernels: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    capacity: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    module_call: float | None = None  # eager host time per nn.Module call
    step_overhead: float | None = None  # eager host time per generation step
    runtime_overhead: dict[str, float] = field(default_factory=dict)  # ort: per node
    notes: str = ""  # what was measured, where not the PyTorch benchmarks (--runtime ort)

    def to_spec(self, name: str) -> HardwareSpec:
        """The figures as a HardwareSpec: unverified, efficiency 1.0 (they are attainable).
        Per-dtype overheads and kernel fractions go in only where more than one dtype was
        calibrated (with one, the general figures are that dtype's)."""
        details = "; ".join(f"{k}: {v}" for k, v in self.details.items())
        several = len(self.overheads) > 1
        return HardwareSpec(
            name=name,
            display_name=f"{self.device_name} (calibrated)",
            vendor=self.vendor,
            kind=self.kind,
            bandwidth=self.bandwidth,
            compute=dict(self.matmul),
            vector=dict(self.vector),
            kernel_overhead=self.kernel_overhead,
            launch_overhead=self.launch_classes.get("elementwise"),
            launch_classes=dict(self.launch_classes),
            capacity=self.capacity,
            efficiency_compute=1.0,
            efficiency_memory=1.0,
            kernel_efficiency=dict(self.kernels),
            kernel_memory=dict(self.kernels_memory),
            dtype_overhead=dict(self.overheads) if several else {},
            dtype_kernels=dict(self.dtype_kernels) if len(self.dtype_kernels) > 1 else {},
            module_call=self.module_call,
            step_overhead=self.step_overhead,
            runtime_overhead=dict(self.runtime_overhead),
            verified=False,
            source=f"measured by modelmeter calibrate on {self.device_name} ({self.torch_version})",
            notes=self.notes + (f"; {details}" if details else "")
            + (f"; UNSTABLE (busy device?): {', '.join(self.warnings)}" if self.warnings else "")
            if self.notes else
            "attainable figures, not datasheet peaks: [compute] best square matmul, "
            "[vector] best elementwise op (cache-resident on a CPU, DRAM-sized on a GPU), "
            "[memory] large copy (read + written), "
            "[overhead] time per counted op of a tiny conv/BN/ReLU model (per dtype in "
            "[overhead.dtypes]), [efficiency.kernels] roofline time / measured time of one "
            "conv, depthwise conv, max pool and batch norm (geometric mean over the dtypes; "
            "each dtype's own in [efficiency.dtypes]), matmul's memory side 32 1024x1024 "
            "matrix-vector products'; [overhead] module_call and step: eager host time per "
            "module call and per generation step (two tiny Llamas); "
            + ("[overhead.runtimes] ort: onnxruntime's time per node of a chain of tiny "
               "nodes (1 thread); " if "ort" in self.runtime_overhead else "")
            + ("[overhead.launch_classes] device time per op beyond its roofline of one tiny "
               "op per kernel class replayed from a CUDA graph, launch: elementwise's; "
               if self.launch_classes else "")
            +
            f"one tiny add takes {self.launch_overhead * 1e6:.3g}us"
            + (f"; {details}" if details else "")
            + (f"; UNSTABLE (busy device?): {', '.join(self.warnings)}" if self.warnings else ""),
        )


__all__ = [
    "SCHEMA",
    "Calibration",
    "Prediction",
    "ModuleTiming",
    "MeasureResult",
    "summarize",
]
