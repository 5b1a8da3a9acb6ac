"""Roofline latency of a Report on a chip: per op, rolled up per module and for the model.

Pure: a function of a Report and a HardwareSpec returning new values. Per op (one counted op =
one kernel, unfused)::

    compute_s  = FLOPs / (peak(dtype, unit) x efficiency.compute x kc)   unit: OpRecord.runs_on
    memory_s   = (bytes read + written) / (bandwidth x efficiency.memory x km)
                 kc, km = efficiency.dtypes[dtype][kernel class], else
                          efficiency.kernels[kernel class], else the parent class's (grouped:
                          conv's; 1.0 unless the spec gives them); a depthwise kernel of T
                          taps: kc x (T / 9) ** efficiency.depthwise_taps[dtype], at most 1
    busy_s     = max(compute_s, memory_s)
    o          = the host's time to issue the op under the runtime: eager, the spec's
                 per-op overhead for the op's dtype (overhead.dtypes, else overhead.kernel),
                 plus overhead.module_call x the module calls that begin at the op;
                 graphs (CUDA graphs / torch.compile), overhead.runtimes.graphs, else 0;
                 ort, overhead.runtimes.ort, else eager's
    L          = overhead.launch: device time of every kernel beyond its roofline (0 if none)
    overhead_s = o + L                                        (launches in series: CPU, NPU)
               = max(0, o_1+...+o_i - finish of kernel i-1) + L   (launches overlap: GPU)
    latency_s  = busy_s + overhead_s
    bound      = overhead if overhead_s > busy_s, else compute or memory

The figures are the spec's ``[attainable]`` ones where it has them (``ideal=True``: the
datasheet's, every efficiency 1.0; hardware/attainable.py).

Where launches overlap execution (``spec.launches_overlap``: GPUs), the host issues kernel i
(in execution order) at o_1+...+o_i (i*o with one overhead) and the device runs it once both
it is issued and kernel i-1 is done; an op is charged only the time the device sat idle
waiting for it, so a backlogged queue hides the overhead and the ops' latencies still add up
to the model's.

An op runs on the matrix units when it has MACs, unless its formula says otherwise (a
depthwise convolution reduces over no channel: it is not a matrix product, and runs on the
vector units). Modules and the model add their ops' times (kernels run one after another).
Utilization is achieved FLOP/s (FLOPs / latency) over the nominal matrix peak of the model's
main dtype.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.kernels import kernel_taps, record_class
from modelmeter.analysis.memory import WeightsFit, weights_fit
from modelmeter.analysis.module_calls import calls_before, charge_calls
from modelmeter.analysis.roofline_notes import closing_notes, figures_of, runtime_notes
from modelmeter.analysis.roofline_times import (
    BOUNDS,
    ModuleTime,
    OpTime,
    bound_of,
    requeued,
    sum_times,
    waits,
)
from modelmeter.hardware.attainable import RUNTIMES
from modelmeter.hardware.schema import HardwareSpecError
from modelmeter.hardware.spec import HardwareSpec, PeakChoice, resolve_peak
from modelmeter.report import ModuleNode, OpRecord, Report


@dataclass(frozen=True)
class Roofline:
    """The roofline analysis of one report on one chip."""

    spec: HardwareSpec
    ops: list[OpTime]
    modules: dict[str, ModuleTime]
    own: dict[str, ModuleTime]
    total: ModuleTime
    dtype: str
    peak: float
    peak_key: str
    ridge_point: float
    batch: int | None = None
    phase: str | None = None
    tf32: bool = False
    notes: list[str] = field(default_factory=list)
    weights: WeightsFit | None = None  # the weights' bytes against the chip's memory
    runtime: str = "eager"
    # the figures priced: "attainable" (the spec's [attainable]), "datasheet" (a spec without
    # one, or a calibrated file) or "ideal" (datasheet, every efficiency 1.0); and their source
    figures: str = "datasheet"
    figures_source: str = ""
    priced_peak: float = 0.0  # the main dtype's matrix peak the ops were priced at, and its key
    priced_peak_key: str = ""

    @property
    def latency_s(self) -> float:
        return self.total.latency_s

    @property
    def utilization(self) -> float:
        """Attainable utilization: (FLOPs / predicted latency) / peak."""
        return self.total.utilization

    @property
    def achieved(self) -> float:
        return self.total.achieved

    @property
    def throughput(self) -> float | None:
        """Samples per second at the analysed batch (None when the batch is unknown)."""
        if self.batch is None or not self.total.latency_s:
            return None
        return self.batch / self.total.latency_s

    def to_dict(self) -> dict[str, Any]:
        """The summary the JSON report puts under ``"roofline"`` (per-module apart)."""
        return {
            **self.total.to_dict(),
            "dtype": self.dtype,
            "peak_flops_per_s": self.peak,
            "peak_key": self.peak_key,
            "priced_peak_flops_per_s": self.priced_peak,
            "priced_peak_key": self.priced_peak_key,
            "ridge_point": self.ridge_point,
            "bandwidth": self.spec.bandwidth,
            "efficiency": {
                "compute": self.spec.efficiency_compute,
                "memory": self.spec.efficiency_memory,
                # the factors ops in the main dtype get
                "kernels": {
                    cls: dict(
                        zip(("compute", "memory"), self.spec.kernel_factors(cls, self.dtype),
                            strict=True)
                    )
                    for cls in self.spec.kernels_table(self.dtype)
                },
            },
            "kernel_overhead_s": self.spec.host_overhead(self.dtype, self.runtime),
            "launch_overhead_s": self.spec.launch_s,
            "launch_classes_s": dict(self.spec.launch_classes),  # per class, over the above
            "launches_overlap": self.spec.launches_overlap,
            "module_call_s": self.spec.module_call_s if self.runtime == "eager" else 0.0,
            "runtime": self.runtime,
            "figures": self.figures,
            "figures_source": self.figures_source,
            "batch": self.batch,
            "throughput_per_s": self.throughput,
            "phase": self.phase,
            "tf32": self.tf32,
            "verified": self.spec.verified,
            "notes": list(self.notes),
            **({"memory": self.weights.to_dict()} if self.weights is not None else {}),
        }


def op_time(
    rec: OpRecord,
    module: str,
    spec: HardwareSpec,
    choice: PeakChoice,
    unit: str,
    *,
    runtime: str = "eager",
) -> OpTime:
    """The roofline time of one op on ``spec`` at the peak ``choice``; the
    ``[efficiency.kernels]`` fractions of its kernel class scale the two ceilings. Its
    overhead is the host's issue time under ``runtime`` plus the kernel's launch time, paid in
    series (:func:`queued` overlaps the host's part with execution)."""
    flops = rec.cost.flops
    moved = rec.cost.bytes_moved
    kind = record_class(rec)
    kc, km = spec.kernel_factors(kind, rec.dtype)
    if kind == "depthwise":  # its fraction was measured on a 3x3 kernel
        kc = min(1.0, kc * spec.taps_factor(rec.dtype, kernel_taps(rec)))
    compute = flops / (choice.value * spec.efficiency_compute * kc)
    memory = moved / (spec.bandwidth * spec.efficiency_memory * km)
    host, launch = spec.host_overhead(rec.dtype, runtime), spec.launch_for(kind)
    overhead = host + launch
    busy = max(compute, memory)
    return OpTime(
        op=rec.op,
        module=module,
        dtype=rec.dtype,
        flops=flops,
        bytes=moved,
        compute_s=compute,
        memory_s=memory,
        overhead_s=overhead,
        latency_s=busy + overhead,
        bound=bound_of(compute, memory, overhead),
        arithmetic_intensity=flops / moved if moved else 0.0,
        phase=rec.phase,
        unit=unit,
        peak=choice.value,
        peak_key=choice.key,
        kernel_class=kind,
        kernel_efficiency=kc,
        kernel_memory_efficiency=km,
        host_s=host,
        launch_s=launch,
    )


def queued(ops: list[OpTime], interval: float | None = None) -> list[OpTime]:
    """The ops as a device that overlaps launches with execution runs them, in order: the
    host spends each op's own issue time (its overhead less its launch time; or ``interval``
    for every op) issuing it, so kernel i is issued when the issue times of ops 1..i are spent
    (``i * interval``); the device starts it when it is issued and kernel i-1 is done, and
    runs it for its launch time plus its busy time. Each op's overhead becomes the time the
    device waited for it plus its launch time."""
    return [requeued(t, w) for t, w in zip(ops, waits(ops, interval), strict=True)]


def main_dtype(report: Report, phase: str | None = None) -> str:
    """The dtype with the most FLOPs among MAC ops (else among all ops; float32 if none)."""
    mac: Counter[str] = Counter()
    every: Counter[str] = Counter()
    for node in report.modules():
        for rec in node.ops:
            if phase is not None and rec.phase != phase:
                continue
            every[rec.dtype] += rec.cost.flops
            if rec.cost.macs > 0:
                mac[rec.dtype] += rec.cost.flops
    for counts in (mac, every):
        if counts:
            return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return "float32"


def _batch(report: Report) -> int | None:
    """The first dimension of the first input with one; None when it is unknown (an ONNX
    input whose dimension was never set is recorded as -1) or zero."""
    for spec in report.inputs:
        if spec.shape:
            batch = int(spec.shape[0])
            return batch if batch > 0 else None
    return None


def roofline(
    report: Report,
    spec: HardwareSpec,
    *,
    phase: str | None = None,
    tf32: bool = False,
    ideal: bool = False,
    runtime: str = "eager",
    memo: dict[int, tuple[OpRecord, OpTime]] | None = None,
) -> Roofline:
    """Roofline latency, bound and utilization of every op, module and the model on ``spec``.

    ``phase`` keeps only "forward" or "backward" ops (None: all). ``tf32`` lets float32 MAC
    ops use the TF32 peak (as ``torch.backends.cuda.matmul.allow_tf32`` does). The spec's
    ``[attainable]`` figures price the ops unless ``ideal`` (the datasheet roofline, every
    efficiency 1.0). ``runtime`` (eager, graphs, ort) sets the host's per-op issue time.
    Utilization is against the datasheet's matrix peak either way. ``memo``: the unqueued
    times of op records seen before (by identity), under the same spec and options only; a
    caller that prices one report at many sizes (a decode step at many contexts, most of
    whose records stay the same objects) passes one dict to every call.
    """
    priced = priced_spec(spec, ideal, runtime)
    dtype = main_dtype(report, phase)
    try:
        ref = resolve_peak(spec, dtype, "matrix", tf32=tf32)  # the datasheet's
        used = resolve_peak(priced, dtype, "matrix", tf32=tf32)
    except ValueError as e:
        raise HardwareSpecError(str(e)) from None
    notes: dict[str, None] = {n: None for n in (ref.note, used.note) if n}
    ops = _priced_ops(report, priced, (phase, tf32, runtime), notes, memo)
    own = {node.name: ModuleTime(node.name, peak=ref.value) for node in report.modules()}
    for t in ops:
        own[t.module] = own[t.module].add(t)
    modules: dict[str, ModuleTime] = {}

    def subtree(node: ModuleNode) -> ModuleTime:
        mine = own[node.name]
        kids = [subtree(c) for c in node.children]
        total = sum_times(node.name, [mine, *kids], ref.value)
        modules[node.name] = total
        return total

    total = subtree(report.root)
    modules = {n.name: modules[n.name] for n in report.modules()}  # tree order
    ridge = used.value * priced.efficiency_compute / (priced.bandwidth * priced.efficiency_memory)
    fit = weights_fit(report, spec)
    figures, source = figures_of(spec, ideal)
    runtime_notes(notes, priced, runtime)
    return Roofline(
        spec=priced,
        ops=ops,
        modules=modules,
        own=own,
        total=total,
        dtype=dtype,
        peak=ref.value,
        peak_key=ref.key,
        ridge_point=ridge,
        batch=_batch(report),
        phase=phase,
        tf32=tf32,
        notes=closing_notes(notes, dtype, spec.ideal() if ideal else spec, fit),
        weights=fit,
        runtime=runtime,
        figures=figures,
        figures_source=source,
        priced_peak=used.value,
        priced_peak_key=used.key,
    )


def unqueued_ops(
    report: Report,
    spec: HardwareSpec,
    options: tuple[str | None, bool, str],
    notes: dict[str, None],
    memo: dict[int, tuple[OpRecord, OpTime]] | None = None,
) -> tuple[list[OpTime], list[int]]:
    """Every op's time on ``spec`` under ``options`` (phase, tf32, runtime), in tree order,
    as if launched in series, and the records' places in the run (``seq``); the peaks'
    fallback notes go into ``notes``; ``memo``: see :func:`roofline`."""
    phase, tf32, runtime = options
    choices: dict[tuple[str, str], PeakChoice] = {}
    ops: list[OpTime] = []
    seqs: list[int] = []
    memo = {} if memo is None else memo
    for node in report.modules():
        for rec in node.ops:
            if phase is not None and rec.phase != phase:
                continue
            unit = rec.runs_on
            key = (rec.dtype, unit)
            if key not in choices:
                try:
                    choices[key] = resolve_peak(spec, rec.dtype, unit, tf32=tf32)
                except ValueError as e:
                    raise HardwareSpecError(str(e)) from None
                if choices[key].note:
                    notes[choices[key].note] = None
            seen = memo.get(id(rec))
            if seen is None or seen[0] is not rec or seen[1].module != node.name:
                seen = memo[id(rec)] = (rec, op_time(rec, node.name, spec, choices[key], unit,
                                                     runtime=runtime))  # fmt: skip
            ops.append(seen[1])
            seqs.append(rec.seq)
    if runtime == "eager" and spec.module_call_s:  # Python's time per module call
        ops = charge_calls(ops, calls_before(report, phase), spec.module_call_s)
    return ops, seqs


def priced_spec(spec: HardwareSpec, ideal: bool, runtime: str) -> HardwareSpec:
    """The spec the ops are priced on: the datasheet's (every efficiency 1.0) if ``ideal``,
    else its attainable figures; an unknown ``runtime`` refused."""
    if runtime not in RUNTIMES:
        raise HardwareSpecError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    return spec.ideal() if ideal else spec.attained()


def queue_waits(spec: HardwareSpec, ops: list[OpTime], seqs: list[int]) -> list[tuple[int, float]]:
    """(index into ``ops``, how long the device waited for it) of every op in execution order
    (the records' seq) where the chip's launch queue overlaps them with execution and some op
    has an overhead; else empty (no queue: nothing waited)."""
    if not (spec.launches_overlap and any(t.overhead_s > 0 for t in ops)):
        return []
    order = list(range(len(ops)))
    if all(s >= 0 for s in seqs):
        order.sort(key=seqs.__getitem__)
    return list(zip(order, waits([ops[i] for i in order]), strict=True))


def _priced_ops(
    report: Report,
    spec: HardwareSpec,
    options: tuple[str | None, bool, str],
    notes: dict[str, None],
    memo: dict[int, tuple[OpRecord, OpTime]] | None = None,
) -> list[OpTime]:
    """:func:`unqueued_ops`, queued in execution order where launches overlap execution
    (the rows stay in tree order)."""
    ops, seqs = unqueued_ops(report, spec, options, notes, memo)
    for i, wait in queue_waits(spec, ops, seqs):
        ops[i] = requeued(ops[i], wait)
    return ops


__all__ = [
    "BOUNDS",
    "OpTime",
    "ModuleTime",
    "Roofline",
    "roofline",
    "op_time",
    "queued",
    "main_dtype",
    "RUNTIMES",
]
