"""A training step over 1, 2, 4, ... devices from ONE trace: the sharding, parallel and
communication arithmetic (``sharding``, ``parallel``, ``communication``, ``training.step_time``)
re-applied to the traced figures of a single-device step at each device count. Pure functions:
no tracing here; ``apply_plan`` is what ``train(..., devices=N)`` itself applies, so each point
of a sweep equals a separate run at that N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from modelmeter.analysis.collectives import Fabric
from modelmeter.analysis.communication import step_communication
from modelmeter.analysis.device_memory import trace_facts, with_device_memory
from modelmeter.analysis.device_peak import NONE, gathered_weights, stage_gathered
from modelmeter.analysis.expert_parallel import (
    device_states,
    expert_collectives,
    expert_group,
    split_categories,
    weight_share,
)
from modelmeter.analysis.parallel import (
    TIED,
    check_plan,
    device_categories,
    layout,
    split_collectives,
)
from modelmeter.analysis.sharding import group_at, zero_states
from modelmeter.analysis.training import TrainingResult, mfu_of, phase_times, step_time
from modelmeter.errors import InputError
from modelmeter.hardware.spec import HardwareSpec

SCHEMA = "modelmeter.device_sweep/1"
DEVICE_COUNTS = tuple(1 << i for i in range(11))  # 1, 2, 4, ... 1024


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """How a step is spread: ZeRO stage, tensor and pipeline degrees, the model's attention
    heads, devices per node, the overlap and the link a ring over n devices runs at."""

    zero: int = 0
    tensor: int = 1
    pipeline: int = 1
    heads: int | None = None
    gpus_per_node: int = 8
    overlap: str = "none"
    links: Callable[[int], Any] = lambda n: None
    fabric: Fabric | None = None  # the links and the collective algorithm (None: flat rings)
    shard_group: int | None = None  # hybrid sharding: ZeRO within groups of this many
    sequence_parallel: bool = False
    virtual: int = 1  # virtual stages per pipeline device (interleaved 1F1B)
    schedule: str = "1f1b"
    kv_heads: int | None = None  # the model's key/value heads (grouped-query attention)
    node_group: bool = False  # the shard group is a node's: it shrinks to fewer replicas
    expert: int = 1  # expert parallel degree (analysis/expert_parallel.py)


def apply_plan(base: TrainingResult, devices: int, plan: DevicePlan,
               hardware: HardwareSpec | None, phases: Any = None,
               facts: Any = None) -> TrainingResult:  # fmt: skip
    """``base`` (a traced step; any sharding it carries is dropped) over ``devices`` under
    ``plan``: the per-device model states, activations and peak, the communication, and with
    ``hardware`` the time (``phases``: ``training.phase_times`` of ``base`` on it, ``facts``:
    ``device_memory.trace_facts`` of it, when already computed)."""
    result = replace(base, sharded=None, parallel=None, communication=None, time=None,
                     device_activations=None, device_peak=None)  # fmt: skip
    if devices > 1 or plan.zero:
        result = _sharded(result, devices, plan, facts)
    if hardware is not None:
        result = replace(result, time=step_time(result, hardware, phases,
                                                _optimizer_share(result)))  # fmt: skip
    return result


def _optimizer_share(result: TrainingResult) -> float:
    """The optimizer's work on one device over the 1/(t·p) share ``step_time`` gives it: 1,
    or under expert parallelism the device's parameters (``weight_share``: experts / (t·e))
    over those at e = 1 (Megatron-Core's optimizer steps only the experts a rank holds)."""
    par = result.parallel
    if par is None or par.expert < 2:
        return 1.0
    element = max(1, round(result.categories["weights"] / max(result.params[0], 1)))
    lay = layout(result.report, None, element, None, result.memory.replicated_linears)
    return float(weight_share(lay, par) / weight_share(lay, replace(par, expert=1)))


def _sharded(result: TrainingResult, devices: int, plan: DevicePlan,
             facts: Any = None) -> TrainingResult:  # fmt: skip
    """The per-device model states and the step's communication under the plan."""
    tensor, pipeline, links = plan.tensor, plan.pipeline, plan.links
    cats, extra, par, data, ecats = result.categories, [], None, devices, None
    if tensor > 1 or pipeline > 1 or plan.expert > 1:
        element = max(1, round(cats["weights"] / max(result.params[0], 1)))
        lay = layout(result.report, plan.heads, element, plan.kv_heads,
                     result.memory.replicated_linears)
        par = check_plan(devices, tensor, pipeline, result.accumulate, lay,
                         sequence_parallel=plan.sequence_parallel, virtual=plan.virtual,
                         schedule=plan.schedule, expert=plan.expert)  # fmt: skip
        cats, data = device_categories(cats, lay, par), par.data
        if lay.expert and par.expert > 1:  # the expert states apart: over d/e replicas
            cats, ecats = split_categories(result.categories, lay, par)
        # point to point and the tied embedding's all-reduce (first and last stage) run over
        # the link of the replica's t x p devices: in a node when it fits in one, else across;
        # an all-to-all over the e x t devices of its expert group (tensor innermost)
        grad = round(result.categories["gradients"] / max(result.params[1], 1))
        extra = [(*c, links(tensor * pipeline if c[0] == "send/recv" or c[1] == TIED else c[5]))
                 for c in split_collectives(lay, par, grad)]  # fmt: skip
        extra += [(*c, links(c[5] * tensor)) for c in expert_collectives(lay, par)]
    group = group_at(plan.shard_group, data, plan.node_group)
    if group != plan.shard_group:
        result = replace(result, notes=[*result.notes, (
            f"shard group 'node' (the {plan.shard_group} replicas a node of "
            f"{plan.gpus_per_node} GPUs holds) shrunk to the {data} data-parallel "
            f"replica{'s' if data > 1 else ''} of "
            f"{devices} device{'s' if devices > 1 else ''}: one group, ZeRO-{plan.zero} over "
            "all of them")])  # fmt: skip
    z = (zero_states(cats, data, plan.zero, group) if par is None
         else device_states(result.categories, lay, par, plan.zero, group))  # fmt: skip
    stages, share = None, Fraction(1)
    if par is not None and lay.params and (tensor > 1 or plan.expert > 1):
        share = weight_share(lay, par)
    zero3 = plan.zero == 3 and (z.group or data) > 1
    gathered = NONE
    if zero3:
        gathered = gathered_weights(result.report, result.categories, share, pipeline,
                                    plan.virtual if par is not None else 1,
                                    None if par is None else lay.rest_places,
                                    0 if par is None or pipeline < 2 else lay.tied)  # fmt: skip
    if par is not None and pipeline > 1:  # each stage its own states and gathered units
        gs = (stage_gathered(result.report, result.categories, share, pipeline, plan.virtual,
                             lay.rest_places, lay.tied) if zero3 else [NONE] * pipeline)  # fmt: skip
        stages = [(device_states(result.categories, lay, par, plan.zero, group, s), gs[s])
                  for s in range(pipeline)]  # fmt: skip
    result = replace(result, sharded=z, parallel=par)
    result = with_device_memory(result, facts, gathered, stages)
    if devices > 1:
        fab = plan.fabric
        ring = links(devices) if fab is None or fab.intra is None else fab.flat(devices)
        comm = step_communication(cats, result.report, devices=data, zero=plan.zero,
                                  accumulate=result.accumulate, ring=ring,
                                  gpus_per_node=plan.gpus_per_node, overlap=plan.overlap,
                                  extra=tuple(extra), total=devices, fabric=plan.fabric,
                                  shard_group=z.group, stride=tensor * pipeline,
                                  experts=_experts(ecats, par, group))  # fmt: skip
        result = replace(result, communication=comm)
    return result


def _experts(ecats: dict[str, int] | None, par: Any, group: int | None) -> Any:
    """The expert states' data-parallel collectives (``step_communication``'s ``experts``):
    over the d/e replicas holding the same experts, e·t·p devices apart."""
    if ecats is None:
        return None
    e = par.expert
    egroup = expert_group(group, e)
    return (ecats["gradients"], ecats["weights"], par.data // e,
            egroup if egroup and egroup < par.data // e else 0, e * par.model_parallel)


@dataclass(frozen=True, slots=True)
class DevicePoint:
    """One device count: a device's memory by category (model states after ZeRO and the split;
    the inputs and the saved activations it holds at once: its share of the micro-batches in
    flight on the pipeline stage with the largest peak), its peak, and its time and rate."""

    devices: int
    memory: dict[str, int]
    step_s: float | None
    compute_s: float | None
    communication_s: float | None
    bubble_s: float | None
    throughput: float | None  # tokens (or samples) per second per device
    mfu: float | None
    peak: int | None = None  # one device's peak under the plan (device_peak), None: no plan

    @property
    def total(self) -> int:
        return sum(self.memory.values())

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "memory": dict(self.memory), "total": self.total,
                "step_s": self.step_s, "compute_s": self.compute_s,
                "communication_s": self.communication_s, "bubble_s": self.bubble_s,
                "throughput": self.throughput, "mfu": self.mfu, "peak": self.peak}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeviceSweep:
    """A step against the number of devices (see module docstring)."""

    model: str
    chip: str | None
    capacity: float | None
    zero: int
    tensor: int
    pipeline: int
    unit: str  # "tokens/s" or "samples/s"
    points: tuple[DevicePoint, ...]
    sequence_parallel: bool = False
    virtual: int = 1
    schedule: str = "1f1b"
    expert: int = 1  # expert parallel degree

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "expert_parallel": self.expert, "model": self.model, "chip": self.chip,
                "capacity_bytes": self.capacity, "zero_stage": self.zero, "tensor": self.tensor,
                "pipeline": self.pipeline, "throughput_unit": self.unit,
                "points": [p.to_dict() for p in self.points],
                "sequence_parallel": self.sequence_parallel, "virtual_stages": self.virtual,
                "schedule": self.schedule}  # fmt: skip


def point_of(r: TrainingResult, devices: int, work: int | None = None) -> DevicePoint:
    """The figures of one planned result ``r`` over ``devices`` (``work``: its forward and
    backward FLOPs, ``r.work``, when already known)."""
    c = r.categories
    z = r.sharded
    memory = ({"weights": c["weights"], "buffers": c["buffers"], "gradients": c["gradients"],
               "optimizer": c["master weights"] + c["optimizer states"]} if z is None else
              {"weights": z.weights, "buffers": z.buffers, "gradients": z.gradients,
               "optimizer": z.optimizer})  # fmt: skip
    act = r.device_activations
    memory["activations"] = c["inputs"] + (c["activations"] if act is None else act.held)
    memory["gathered weights"] = 0 if r.device_peak is None else r.device_peak.gathered
    t = r.time
    return DevicePoint(devices, memory, None if t is None else t.step_s,
                       None if t is None else t.compute_s,
                       None if t is None else t.communication_s,
                       None if t is None else t.bubble_s, r.throughput,
                       mfu_of(t, r.work if work is None else work),
                       None if r.device_peak is None else r.device_peak.bytes)  # fmt: skip


def sweep_devices(base: TrainingResult, plan: DevicePlan, hardware: HardwareSpec | None,
                  counts: Iterable[int] = DEVICE_COUNTS,
                  progress: Any = None) -> DeviceSweep:  # fmt: skip
    """``base`` re-planned at each of ``counts`` (those a tensor x pipeline replica does not
    divide, or whose replicas a hybrid shard group does not divide, are left out);
    ``progress(stage, done, total)`` is told before each count."""
    per_replica, group = plan.tensor * plan.pipeline, plan.shard_group or 1
    kept = [n for n in counts if n >= 1 and n % per_replica == 0
            and (n // per_replica) % plan.expert == 0
            and ((n // per_replica) % group == 0
                 or (plan.node_group and n // per_replica < group))]  # fmt: skip
    if not kept:
        raise InputError(f"no device count in the sweep splits into tensor {plan.tensor} x "
                         f"pipeline {plan.pipeline} = {per_replica} per replica"
                         + (f" and shard groups of {group}" if group > 1 else ""))  # fmt: skip
    phases = None if hardware is None else phase_times(base, hardware)  # once, not per count
    work, facts = base.work, trace_facts(base)
    points = []
    for done, n in enumerate(kept):
        if progress:
            progress(f"planning {n} device(s)", done, len(kept))
        points.append(point_of(apply_plan(base, n, plan, hardware, phases, facts), n, work))
    return DeviceSweep(
        model=base.report.model,
        chip=None if hardware is None else hardware.name,
        capacity=None if hardware is None else hardware.capacity,
        zero=plan.zero,
        tensor=plan.tensor,
        pipeline=plan.pipeline,
        unit="tokens/s" if base.tokens is not None else "samples/s",
        points=tuple(points),
        sequence_parallel=plan.sequence_parallel,
        virtual=plan.virtual,
        schedule=plan.schedule,
        expert=plan.expert,
    )


__all__ = ["DEVICE_COUNTS", "SCHEMA", "DevicePlan", "DevicePoint", "DeviceSweep", "apply_plan",
           "point_of", "sweep_devices"]  # fmt: skip
