"""The train use case: ``train(model, inputs, optimizer=..., precision=..., accumulate=k)
-> TrainingResult``: one training step traced (forward, backward, the real optimizer's step)
on meta copies, its memory by category and peak, and with a chip its time, throughput and MFU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import lcm
from typing import Any

from modelmeter.analysis.collectives import fabric
from modelmeter.analysis.communication import OVERLAPS, plan_link
from modelmeter.analysis.device_sweep import (
    DEVICE_COUNTS,
    DevicePlan,
    DeviceSweep,
    apply_plan,
    sweep_devices,
)
from modelmeter.analysis.expert_parallel import expert_group
from modelmeter.analysis.parallel import check_heads, check_plan, heads_of, kv_heads_of
from modelmeter.analysis.sharding import check_shard_group, group_at, zero_states
from modelmeter.analysis.training import (
    TrainingResult,
    accumulation_cost,
    find_peak,
)
from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.events import EIGHT_BIT, StepSetup
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.host import collector_paused
from modelmeter.inputs import InputRequest
from modelmeter.registry import CONVENTIONS
from modelmeter.report import Report
from modelmeter.usecases.train_batch import largest_batch

_STATES = ("weights", "buffers", "master weights", "gradients", "optimizer states")


@collector_paused()
def train(
    model: Any,
    inputs: Any = None,
    *,
    optimizer: str = "adamw",
    variant: str = "foreach",
    precision: str = "fp32",
    accumulate: int = 1,
    batch: int | None = None,
    hardware: HardwareSpec | None = None,
    convention: str = "exact",
    lr: float = 1e-3,
    weight_decay: float | None = None,
    devices: int = 1,
    zero: int = 0,
    max_batch: bool = False,
    checkpointing: bool = False,
    gpus_per_node: int = 8,
    overlap: str = "none",
    intra: str | None = None,
    inter: str | None = None,
    tensor: int = 1,
    pipeline: int = 1,
    micro_batches: int | None = None,
    shard_group: int | str | None = None,
    collective: str = "auto",
    nics_per_node: int = 0,
    sequence_parallel: bool = False,
    virtual_stages: int = 1,
    schedule: str = "1f1b",
    progress: Any = None,
    expert_parallel: int = 1,
) -> TrainingResult:
    """One training step of ``model`` (an ``nn.Module`` or a model name, as for ``analyze``)
    on ``inputs`` (default: a named model's own) with ``optimizer`` (sgd with momentum, adam,
    adamw, adafactor; bitsandbytes' adam8bit, adamw8bit) in ``variant`` (foreach, for-loop, fused) at ``precision`` (fp32, bf16, fp16,
    bf16-mixed, fp16-mixed), accumulating gradients over ``accumulate`` micro-batches; with
    ``hardware`` also the step's time, throughput and MFU; ``devices`` > 1: the model states
    per device under ZeRO ``zero`` (0: plain data parallelism, 1, 2, 3); ``max_batch``: the
    result at the largest micro-batch whose peak fits ``hardware``'s memory (its
    ``max_batch`` set; the inputs' first dimension is what grows); ``checkpointing``: the
    repeated blocks (children of an ``nn.ModuleList``) checkpointed, their recomputation
    counted as phase ``recompute`` (the model itself is not changed). Over ``devices`` > 1
    the step's collectives (``analysis/communication.py``) run over ``intra`` (default: the
    chip's ``[interconnect]`` intra link) within nodes of ``gpus_per_node`` and ``inter``
    between them; ``overlap`` "none" adds their time to the compute, "full" hides what the
    compute can. ``tensor`` / ``pipeline``: Megatron-style tensor parallel degree and pipeline
    stages (``analysis/parallel.py``) over ``micro_batches`` (the accumulation's);
    ``sequence_parallel`` also splits what tensor parallelism leaves whole, ``virtual_stages``
    interleaves the pipeline's ``schedule`` ("1f1b" or "gpipe"). ``shard_group``: hybrid
    sharding, ZeRO within groups of that many data-parallel replicas ("node": one node's)
    replicated across the groups; ``collective``: "auto" (hierarchical where a group spans
    nodes and it is faster), "ring" or "hierarchical" (``analysis/collectives.py``) with
    ``nics_per_node`` NICs per node (0: one per GPU). The result's ``device_activations`` and
    ``device_peak`` are one device's (``analysis/activation_split.py``,
    ``analysis/device_peak.py``). ``progress(stage, done, total)``: told of each step the
    largest-batch search traces (n of the N it knows it needs). ``expert_parallel``: each
    mixture-of-experts layer's experts spread over that many of the data-parallel replicas
    (``analysis/expert_parallel.py``; it must divide the replicas and the experts)."""
    model, request, label, plan = _setup(
        model, inputs, batch, StepSetup(optimizer, variant, precision, lr=lr,
                                        weight_decay=weight_decay, checkpointing=checkpointing),
        accumulate, convention, hardware, (devices, zero, tensor, pipeline, micro_batches),
        (gpus_per_node, overlap, intra, inter), (shard_group, collective, nics_per_node),
        (sequence_parallel, virtual_stages, schedule), expert_parallel)  # fmt: skip
    replicas = devices // (tensor * pipeline)
    group = group_at(plan.hybrid[0], replicas, plan.hybrid[2])
    check_shard_group(group, replicas, zero)
    expert_group(group, expert_parallel)
    if max_batch:
        return _largest(model, request, label, plan, progress)
    return _step(model, request, label, plan)


def train_devices(model: Any, inputs: Any = None, *, counts: Any = DEVICE_COUNTS,
                  **options: Any) -> DeviceSweep:  # fmt: skip
    """The step of ``train(model, inputs, **options)`` against the number of devices: traced
    once, the plan (``zero``, ``tensor``, ``pipeline``, the links) re-applied at each of
    ``counts`` (default 1, 2, 4, ... 1024; those a tensor x pipeline replica does not divide
    are left out). ``options`` are ``train``'s, except ``max_batch``."""
    return train_and_devices(model, inputs, counts=counts, **options)[1]


@collector_paused()
def train_and_devices(model: Any, inputs: Any = None, *, devices: int | None = None,
                      counts: Any = DEVICE_COUNTS, progress: Any = None,
                      **options: Any) -> tuple[TrainingResult, DeviceSweep]:  # fmt: skip
    """``train(model, inputs, devices=devices, **options)`` (default: one tensor x pipeline
    replica's devices, times the shard group's replicas) and ``train_devices`` from the same
    single trace; ``progress(stage, done, total)`` is told of the trace, then of each device
    count (n/N)."""
    if "max_batch" in options:
        raise InputError("the sweep over devices and the largest batch are one at a time")
    counts = tuple(counts)
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise InputError(f"device counts must be whole numbers >= 1 (got {counts!r})")
    per_replica = options.get("tensor", 1) * options.get("pipeline", 1)
    top = max([devices or per_replica, *[n for n in counts if n % per_replica == 0]])
    o = {"batch": None, "optimizer": "adamw", "variant": "foreach", "precision": "fp32",
         "lr": 1e-3, "weight_decay": None, "checkpointing": False, "accumulate": 1,
         "convention": "exact", "hardware": None, "zero": 0, "tensor": 1, "pipeline": 1,
         "micro_batches": None, "gpus_per_node": 8, "overlap": "none", "intra": None,
         "inter": None, "shard_group": None, "collective": "auto", "nics_per_node": 0,
         "sequence_parallel": False, "virtual_stages": 1, "schedule": "1f1b",
         "expert_parallel": 1}  # fmt: skip
    unknown = set(options) - set(o)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(sorted(unknown))}")
    o.update(options)
    setup = StepSetup(o["optimizer"], o["variant"], o["precision"], lr=o["lr"],
                      weight_decay=o["weight_decay"], checkpointing=o["checkpointing"])  # fmt: skip
    model, request, label, plan = _setup(
        model, inputs, o["batch"], setup, o["accumulate"], o["convention"], o["hardware"],
        (top, o["zero"], o["tensor"], o["pipeline"], o["micro_batches"]),
        (o["gpus_per_node"], o["overlap"], o["intra"], o["inter"]),
        (o["shard_group"], o["collective"], o["nics_per_node"]),
        (o["sequence_parallel"], o["virtual_stages"], o["schedule"]),
        o["expert_parallel"])  # fmt: skip
    if devices is None:  # one replica, or one shard group of them
        devices = per_replica * lcm(plan.hybrid[0] or 1, plan.expert)
    sp, v, sched = plan.stages
    check_plan(devices, plan.split[0], plan.split[1], plan.accumulate,
               sequence_parallel=sp, virtual=v, schedule=sched, expert=plan.expert)  # fmt: skip
    replicas = devices // per_replica
    check_shard_group(group_at(plan.hybrid[0], replicas, plan.hybrid[2]), replicas, plan.zero)
    if progress:
        progress("tracing the training step", 0, None)
    base = _step(model, request, label, replace(plan, devices=1, zero=0, hardware=None))
    dp = _device_plan(plan)
    return (apply_plan(base, devices, dp, plan.hardware),
            sweep_devices(base, dp, plan.hardware, counts, progress))  # fmt: skip


def _setup(model: Any, inputs: Any, batch: int | None, setup: StepSetup, accumulate: int,
           convention: str, hardware: HardwareSpec | None, split: tuple[Any, ...],
           cluster: tuple[Any, ...],
           hybrid: tuple[Any, ...] = (None, "auto", 0),
           stages: tuple[bool, int, str] = (False, 1, "1f1b"), expert: int = 1,
           ) -> tuple[Any, InputRequest, Any, _Plan]:  # fmt: skip
    """Check the options and the plan before tracing; load a named model once."""
    devices, zero, tensor, pipeline, micro_batches = split
    sp, virtual, schedule = stages
    gpus_per_node, overlap, intra, inter = cluster
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        raise InputError(f"accumulate must be a whole number >= 1 (got {accumulate!r})")
    if micro_batches is not None:
        if accumulate not in (1, micro_batches):
            raise InputError(f"--micro-batches {micro_batches} and --accumulate {accumulate} "
                             "differ: the pipeline's micro-batches are the accumulation's")  # fmt: skip
        accumulate = micro_batches
    check_plan(devices, tensor, pipeline, accumulate, sequence_parallel=sp, virtual=virtual,
               schedule=schedule, expert=expert)  # a bad plan fails before tracing
    zero_states({k: 0 for k in _STATES}, devices, zero)
    ring = _ring(hardware, devices, gpus_per_node, overlap, intra, inter)
    model, request, label = _prepare(model, inputs, batch)
    heads, kv_heads = heads_of(model), kv_heads_of(model)
    check_heads(tensor, heads, kv_heads)
    plan = _Plan(setup, accumulate, convention, devices, zero, hardware,
                 (gpus_per_node, overlap, ring), (tensor, pipeline, heads, kv_heads),
                 _hybrid(hardware, devices, gpus_per_node, intra, inter, tensor * pipeline,
                         hybrid), (bool(sp), virtual, schedule), expert)  # fmt: skip
    return model, request, label, plan


@dataclass(frozen=True)
class _Plan:
    setup: StepSetup
    accumulate: int
    convention: str
    devices: int
    zero: int
    hardware: HardwareSpec | None
    cluster: tuple[int, str, Any] = (8, "none", None)  # GPUs per node, overlap, links(n)
    split: tuple[int, int, int | None, int | None] = (1, 1, None, None)  # tensor, pipeline,
    # attention heads, key/value heads
    hybrid: tuple[int | None, Any, bool] = (None, None, False)  # shard group (replicas),
    # Fabric or None, the group is a node's
    stages: tuple[bool, int, str] = (False, 1, "1f1b")  # sequence parallel, virtual, schedule
    expert: int = 1  # expert parallel degree


def _hybrid(spec: HardwareSpec | None, devices: int, gpus_per_node: int, intra: str | None,
            inter: str | None, per_replica: int,
            options: tuple[Any, ...]) -> tuple[Any, Any, bool]:  # fmt: skip
    """The shard group in data-parallel replicas ("node": one node's), the fabric the
    collectives run on (None where ``_ring`` has no link either) and whether the group is a
    node's (it then shrinks to fewer replicas: ``sharding.group_at``)."""
    group, algorithm, nics = options
    node = group == "node"
    if node:
        group = max(1, gpus_per_node // per_replica)
    elif isinstance(group, str):
        raise InputError(f"the shard group is a whole number or 'node' (got {group!r})")
    fab = fabric(None, None, gpus_per_node, algorithm, nics)  # checks the algorithm, NICs
    intra = intra or (spec.intra_link if spec is not None else None)
    inter = inter or (spec.inter_link if spec is not None else None)
    if devices < 2 or intra is None:
        return group, (None if devices < 2 else fab), node
    return group, fabric(intra, inter, gpus_per_node, algorithm, nics), node


def _ring(spec: HardwareSpec | None, devices: int, gpus_per_node: int, overlap: str,
          intra: str | None, inter: str | None) -> Any:  # fmt: skip
    """The link a collective over n devices runs at, as a function of n (None: no chip or
    link named: bytes only)."""
    if isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int) or gpus_per_node < 1:
        raise InputError(f"GPUs per node must be a whole number >= 1 (got {gpus_per_node!r})")
    if overlap not in OVERLAPS:
        raise InputError(f"unknown overlap {overlap!r}; use one of {', '.join(OVERLAPS)}")
    intra = intra or (spec.intra_link if spec is not None else None)
    inter = inter or (spec.inter_link if spec is not None else None)
    if devices < 2 or (spec is None and intra is None):
        return lambda n: None
    if spec is not None and intra is None:
        raise InputError(f"{spec.name} names no intra-node link: give one with --intra "
                         "(e.g. nvlink4, pcie4)")  # fmt: skip
    plan_link(intra, inter, devices, gpus_per_node)  # the widest group's link must exist
    return lambda n: plan_link(intra, inter, n, gpus_per_node)


def _prepare(model: Any, inputs: Any, batch: int | None) -> tuple[Any, InputRequest, Any]:
    """The module (a name loaded once), its request (a named model's defaults applied) and
    its label."""
    request = (
        inputs if isinstance(inputs, InputRequest) else InputRequest.from_api(inputs, batch=batch)
    )
    label = None
    if isinstance(model, str):
        from modelmeter.models import load

        loaded = load(model)
        model, label = loaded.model, loaded.label
        request = request.with_defaults(loaded.inputs, loaded.kwargs, loaded.dtypes)
    return model, request, label


def _step(model: Any, request: InputRequest, label: Any, plan: _Plan) -> TrainingResult:
    from modelmeter.frontends.torch.optimizers import counted_variant
    from modelmeter.frontends.torch.training import trace_step

    setup, k = plan.setup, plan.accumulate
    trace, memory, accumulate_events = trace_step(model, request, setup,
                                                  convention=plan.convention, name=label)  # fmt: skip
    report = build(trace)
    counted = counted_variant(setup, trace.notes)
    samples, tokens = _sizes(report)
    result = TrainingResult(
        setup=setup,
        variant=counted,
        accumulate=k,
        report=report,
        memory=memory,
        accumulation=accumulation_cost(accumulate_events),
        peak=find_peak(report, memory, k),
        samples=samples,
        tokens=tokens,
        notes=[*trace.notes, *_notes(setup, memory)],
    )
    return apply_plan(result, plan.devices, _device_plan(plan), plan.hardware)


def _device_plan(plan: _Plan) -> DevicePlan:
    (tensor, pipeline, heads, kv_heads), (per_node, overlap, links) = plan.split, plan.cluster
    group, fab, node = plan.hybrid
    sp, virtual, schedule = plan.stages
    return DevicePlan(plan.zero, tensor, pipeline, heads, per_node, overlap, links, fabric=fab,
                      shard_group=group, sequence_parallel=sp, virtual=virtual,
                      schedule=schedule, kv_heads=kv_heads, node_group=node,
                      expert=plan.expert)  # fmt: skip


def _largest(model: Any, request: InputRequest, label: Any, plan: _Plan,
             progress: Any = None) -> TrainingResult:  # fmt: skip
    """The result at the largest micro-batch whose peak fits the chip's capacity
    (``train_batch.largest_batch``; ``max_batch`` set)."""
    spec = plan.hardware
    if spec is None or spec.capacity is None:
        raise InputError("the largest batch that fits needs a chip with a memory capacity "
                         "(--hardware NAME)")  # fmt: skip
    return largest_batch(lambda b: _step(model, request.with_batch(b), label, plan),
                         spec.capacity, progress)  # fmt: skip


def _sizes(report: Report) -> tuple[int | None, int | None]:
    """(samples, tokens) of one micro-batch: the first input's first dimension; tokens where it
    is a 2-D integer tensor (batch x sequence of token ids)."""
    for spec in report.inputs:
        if spec.shape:
            samples = int(spec.shape[0])
            if len(spec.shape) == 2 and spec.dtype.startswith(("int", "uint")):
                return samples, samples * int(spec.shape[1])
            return samples, None
    return None, None


_STATES_FP32 = {False: " and optimizer states", True: " (the 8-bit optimizer's states: uint8)"}


def _notes(setup: StepSetup, memory: Any) -> list[str]:
    notes = [
        "the backward is seeded with ones on the model's outputs: a loss function is not "
        "counted; the model's outputs are freed before the optimizer steps",
        "the model runs in training mode, as a training loop runs it (dropout is counted, "
        "batch norm uses the batch's statistics)",
    ]
    if setup.mixed:
        notes.append(
            f"{setup.precision}: weights and gradients in {setup.model_dtype}, fp32 master "
            f"weights{_STATES_FP32[setup.optimizer in EIGHT_BIT]}; the gradients are cast to fp32 for the step and the "
            "weights copied back; the forward follows CUDA autocast's policy (matmuls and "
            f"convolutions in {setup.model_dtype}; softmax, norms, losses, sums in fp32; its "
            "casts counted)"
        )
    if memory.host_states:
        notes.append(
            f"the optimizer's step counters ({memory.host_states} bytes) are held on the host, "
            "not counted in device memory"
        )
    return notes


__all__ = ["train", "train_and_devices", "train_devices"]
