"""A whole training step: costs per phase, memory by category and its peak, and with a chip the
step time, throughput and MFU. Pure functions of a Report (one micro-batch's forward and
backward and the optimizer's step, as traced), the step's memory and a HardwareSpec.

Gradient accumulation over k micro-batches multiplies exactly: the forward and the backward
run k times, the gradients of micro-batches 2..k are added into the existing ones (the traced
``grad += new`` of each trainable parameter, k-1 times), the optimizer steps once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.activation_split import DeviceActivations
from modelmeter.analysis.communication import Communication
from modelmeter.analysis.device_peak import DevicePeak
from modelmeter.analysis.parallel import ParallelPlan
from modelmeter.analysis.roofline import roofline
from modelmeter.analysis.sharding import ShardedStates
from modelmeter.builder import cost_of
from modelmeter.costs import ZERO, Cost
from modelmeter.events import OpEvent, StepMemory, StepSetup
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.registry import Formula, lookup
from modelmeter.report import Report

SCHEMA = "modelmeter.training/1"


@dataclass(frozen=True, slots=True)
class Peak:
    """The most bytes alive at once in the step, and when: the op (its report key), the module
    it ran in and its phase; ``later`` when it falls in micro-batch 2..k (the gradients of the
    earlier ones already held)."""

    bytes: int
    phase: str
    op: str
    module: str
    later: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "phase": self.phase, "op": self.op, "module": self.module,
                "later_micro_batch": self.later}  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepTime:
    """Roofline time of each phase of the whole step (forward and backward k times) on a chip,
    and what follows from it."""

    chip: str
    phases: dict[str, float]
    peak_flops: float
    dtype: str
    capacity: float | None
    communication_s: float = 0.0  # the communication the step waits for (not overlapped)
    bubble_s: float = 0.0  # the pipeline's idle time
    model_parallel: int = 1  # devices one replica is split over (tensor x pipeline)

    @property
    def compute_s(self) -> float:
        return sum(self.phases.values())

    @property
    def step_s(self) -> float:
        return self.compute_s + self.bubble_s + self.communication_s

    def to_dict(self) -> dict[str, Any]:
        return {"chip": self.chip, "phases_s": dict(self.phases), "step_s": self.step_s,
                "compute_s": self.compute_s, "communication_s": self.communication_s,
                "bubble_s": self.bubble_s, "model_parallel": self.model_parallel,
                "peak_flops": self.peak_flops, "dtype": self.dtype,
                "capacity_bytes": self.capacity}  # fmt: skip


@dataclass(frozen=True)
class TrainingResult:
    """One training step of a model with an optimizer and precision (see module docstring)."""

    setup: StepSetup
    variant: str  # the variant counted (a fused one on meta is counted as foreach)
    accumulate: int
    report: Report
    memory: StepMemory
    accumulation: Cost  # one further micro-batch's gradient additions
    peak: Peak
    samples: int | None
    tokens: int | None
    time: StepTime | None = None
    notes: list[str] = field(default_factory=list)
    sharded: ShardedStates | None = None  # model states per device under ZeRO
    max_batch: int | None = None  # the largest micro-batch that fits, when it was searched
    communication: Communication | None = None  # the collectives of a step over devices
    parallel: ParallelPlan | None = None  # tensor / pipeline parallel plan
    # one device of the plan: the pipeline stage with the largest peak: its activations and peak
    device_activations: DeviceActivations | None = None
    device_peak: DevicePeak | None = None

    # ---- figures -------------------------------------------------------------------------
    @property
    def phases(self) -> dict[str, Cost]:
        """The whole step's cost per phase (forward, backward k times; optimizer once)."""
        k = self.accumulate
        fwd, bwd = self.report.total("forward").cost, self.report.total("backward").cost
        out = {"forward": fwd * k, "backward": bwd * k + self.accumulation * (k - 1)}
        if self.setup.checkpointing:  # the blocks' forward run again in the backward
            out["recompute"] = self.report.total("recompute").cost * k
        out["optimizer"] = self.report.total("optimizer").cost
        return out

    @property
    def total(self) -> Cost:
        return sum(self.phases.values(), ZERO)

    @property
    def params(self) -> tuple[int, int]:
        """(parameters, trainable parameters)."""
        t = self.report.total()
        return t.params, t.trainable_params

    @property
    def categories(self) -> dict[str, int]:
        """Device bytes by category; the model states first, then what one micro-batch
        adds. The peak is not their sum: activations die as the backward frees them."""
        m = self.memory
        return {
            "weights": m.weights,
            "buffers": m.buffers,
            "master weights": m.master,
            "gradients": m.gradients,
            "optimizer states": sum(m.states.values()),
            "inputs": m.inputs,
            "activations": m.activations,
        }

    @property
    def model_states(self) -> int:
        """Weights, buffers, master weights, gradients and optimizer states."""
        c = self.categories
        return sum(c[k] for k in ("weights", "buffers", "master weights", "gradients",
                                  "optimizer states"))  # fmt: skip

    @property
    def bytes_per_trainable(self) -> float:
        """Model-state bytes per trainable parameter (mixed-precision Adam: 16)."""
        return self.model_states / max(self.params[1], 1)

    @property
    def peak_bytes(self) -> int:
        """The peak one device holds: the plan's device peak, else the traced step's."""
        return self.peak.bytes if self.device_peak is None else self.device_peak.bytes

    @property
    def fits(self) -> bool | None:
        if self.time is None or self.time.capacity is None:
            return None
        return self.peak_bytes <= self.time.capacity

    @property
    def device_fits(self) -> bool | None:
        """Whether one device's peak under the plan fits the chip (None: no plan or chip)."""
        if self.device_peak is None or self.time is None or self.time.capacity is None:
            return None
        return self.device_peak.bytes <= self.time.capacity

    @property
    def throughput(self) -> float | None:
        """Tokens per second (samples per second where the input is not tokens)."""
        if self.time is None or not self.time.step_s:
            return None
        n = self.tokens if self.tokens is not None else self.samples
        mp = self.time.model_parallel
        return None if n is None else n * self.accumulate / self.time.step_s / mp

    @property
    def mfu(self) -> float | None:
        """The forward and backward FLOPs per second over the chip's matrix peak."""
        if self.time is None or not self.time.step_s or not self.time.peak_flops:
            return None
        return mfu_of(self.time, self.work)

    @property
    def work(self) -> int:
        """The forward and backward FLOPs of the step (what MFU counts)."""
        p = self.phases
        return p["forward"].flops + p["backward"].flops

    def to_dict(self) -> dict[str, Any]:
        s = self.setup
        params, trainable = self.params
        return {
            "schema": SCHEMA,
            "model": self.report.model,
            "optimizer": s.optimizer,
            "variant": self.variant,
            "precision": s.precision,
            "accumulate": self.accumulate,
            "checkpointing": s.checkpointing,
            "samples": self.samples,
            "tokens": self.tokens,
            "max_batch": self.max_batch,
            "params": params,
            "trainable_params": trainable,
            "phases": {k: v.to_dict() for k, v in self.phases.items()},
            "total": self.total.to_dict(),
            "memory": {
                "categories": self.categories,
                "optimizer_states": dict(self.memory.states),
                "host_optimizer_states": self.memory.host_states,
                "model_states": self.model_states,
                "bytes_per_trainable_param": self.bytes_per_trainable,
                "peak": self.peak.to_dict(),
                "per_device": None if self.sharded is None else self.sharded.to_dict(),
                "per_device_activations": None if self.device_activations is None else
                self.device_activations.to_dict(),
                "per_device_peak": None if self.device_peak is None else {
                    **self.device_peak.to_dict(), "fits": self.device_fits},
            },
            "communication": None if self.communication is None else
            self.communication.to_dict(),
            "parallel": None if self.parallel is None else self.parallel.to_dict(),
            "time": None if self.time is None else {
                **self.time.to_dict(), "fits": self.fits, "throughput": self.throughput,
                "throughput_unit": "tokens/s" if self.tokens is not None else "samples/s",
                "mfu": self.mfu,
            },
            "notes": list(self.notes),
        }  # fmt: skip


def mfu_of(time: StepTime | None, work: float) -> float | None:
    """``work`` FLOPs per second of ``time``'s step over the chip's matrix peak, per device."""
    if time is None or not time.step_s or not time.peak_flops:
        return None
    return work / time.model_parallel / time.step_s / time.peak_flops


def accumulation_cost(events: list[OpEvent]) -> Cost:
    """The cost of the traced gradient additions of one further micro-batch."""
    total = ZERO
    for ev in events:
        entry = lookup(ev.frontend, ev.target)
        if isinstance(entry, Formula):
            total = total + cost_of(entry, ev.call)
    return total


def find_peak(report: Report, memory: StepMemory, accumulate: int) -> Peak:
    """The step's peak: the static bytes plus the most live bytes after any op; with k > 1 a
    forward or backward op of a later micro-batch also holds every gradient already made."""
    where = {rec.seq: (node.name, rec.op, rec.phase) for node in report.modules()
             for rec in node.ops}  # fmt: skip
    best, best_i, later = -1, -1, False
    for i, live in enumerate(memory.timeline):
        if live > best:
            best, best_i = live, i
    if accumulate > 1 and memory.grad_born:
        total = sum(n for _, n in memory.grad_born)
        born = sorted(memory.grad_born)
        j = made = 0  # gradients born strictly before event i
        for i, live in enumerate(memory.timeline):
            while j < len(born) and born[j][0] < i:
                made += born[j][1]
                j += 1
            if where.get(i, ("", "", "optimizer"))[2] == "optimizer":
                continue
            if live + total - made > best:
                best, best_i, later = live + total - made, i, True
    module, op, phase = where.get(best_i, ("", "-", "forward"))
    return Peak(memory.static + max(best, 0), phase, op, module, later)


def phase_times(result: TrainingResult, spec: HardwareSpec) -> tuple[dict[str, float], Any]:
    """One device's roofline time per phase of the whole (unsplit) step on ``spec``: forward
    and backward k times, the gradient additions of micro-batches 2..k at the memory
    bandwidth, the optimizer once; and the forward's roofline. They depend on the trace only,
    not on the plan: a sweep over devices computes them once."""
    k = result.accumulate
    times: dict[str, float] = {}
    fwd = roofline(result.report, spec, phase="forward")
    for phase in result.phases:
        r = fwd if phase == "forward" else roofline(result.report, spec, phase=phase)
        times[phase] = r.total.latency_s * (1 if phase == "optimizer" else k)
    acc = result.accumulation
    times["backward"] += (k - 1) * (acc.bytes_read + acc.bytes_written) / (
        spec.bandwidth * spec.efficiency_memory
    )
    return times, fwd


def step_time(result: TrainingResult, spec: HardwareSpec,
              phases: tuple[dict[str, float], Any] | None = None,
              optimizer_share: float = 1.0) -> StepTime:  # fmt: skip
    """Roofline time per phase of the whole step on ``spec`` (``phase_times``, or ``phases``
    when given), split over the plan's devices; and the communication the step waits for.
    ``optimizer_share``: the optimizer's time on one device over the step's 1/(t·p) share of
    it (expert parallelism: a device updates only its own experts)."""
    times, fwd = phase_times(result, spec) if phases is None else phases
    plan, mp, bubble = result.parallel, 1, 0.0
    if plan is not None:  # one device's share of the work, ideally split; the pipeline idles
        mp = plan.model_parallel
        times = {k: v / mp * (optimizer_share if k == "optimizer" else 1)
                 for k, v in times.items()}  # fmt: skip
        bubble = sum(times.values()) * plan.bubble_ratio  # (p-1)/(v·m) of the compute
    comm = result.communication
    exposed = 0.0 if comm is None else comm.exposed_s(sum(times.values()))
    return StepTime(spec.name, times, fwd.peak, fwd.dtype, spec.capacity, exposed, bubble, mp)


__all__ = ["SCHEMA", "Peak", "StepTime", "TrainingResult", "accumulation_cost", "find_peak",
           "mfu_of", "phase_times", "step_time"]  # fmt: skip
