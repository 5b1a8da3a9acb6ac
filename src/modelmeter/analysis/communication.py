"""The communication of a data-parallel training step (plain, ZeRO-1/2/3): which collectives
run, how many bytes each device sends, and how long they take over the plan's link. Pure
arithmetic on a traced step's categories and module tree.

Each collective is priced by ``analysis/collectives.py``: within a node one ring over the
chip's intra-node link (NVLink, PCIe); a group that spans nodes runs a flat ring at its slowest
hop or the two-level (hierarchical) algorithm, reduce-scatter in the node, across nodes over
the NICs, all-gather in the node (``--collective``; by default the faster). Without a fabric
(``ring=`` alone) a flat ring over that link.

What each plan runs per step (Rajbhandari et al. 2020, section 7):

* plain data parallel and ZeRO-1: one all-reduce of the gradients (2Ψ sent per device);
  ZeRO-1 does it as a reduce-scatter of the gradients and, after the step, an all-gather of
  the updated weights: the same 2Ψ;
* ZeRO-2: a reduce-scatter of the gradients per micro-batch (each device keeps only its
  partition) and one all-gather of the updated weights;
* ZeRO-3 (FSDP full shard): per micro-batch, an all-gather of the weights in the forward, one
  again in the backward, and a reduce-scatter of the gradients: 3Ψ, 1.5 x data parallel;
* hybrid sharding (FSDP HYBRID_SHARD) in groups of G replicas: the stage's collectives within
  the group, then once per step an all-reduce of each device's 1/G gradient shard across the
  N/G groups (the shards accumulate over the micro-batches; the replicas agree before the
  optimizer steps).

Expert parallelism of degree e (``analysis/expert_parallel.py``): the expert layers' share of
the plan above runs over the d/e replicas holding the same experts (``experts=``), as rows of
their own ("expert gradients", "expert weights", ...); the rest over all d.

Ψ here is bytes: the gradients (trainable parameters at the gradients' dtype) and the weights
(every parameter at the model's dtype; ZeRO-3 gathers frozen weights too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.collectives import Fabric, Priced, Stage, merged, ring_sent, ring_steps
from modelmeter.errors import InputError
from modelmeter.hardware.links import Link, link

if TYPE_CHECKING:
    from modelmeter.report import Report

OVERLAPS = ("none", "full")
KINDS = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all")


@dataclass(frozen=True, slots=True)
class Collective:
    """One collective of the step: its ``kind``, what it moves, in which phase, the buffer's
    ``bytes``, how many times a step runs it, and per device per step the bytes sent and the
    time."""

    kind: str
    what: str
    phase: str
    bytes: int
    count: int
    sent: float
    time_s: float
    group: int = 0  # the devices it runs over (0: the data-parallel replicas)
    link: str = ""  # the link's name ("": the plan's data-parallel link)
    algorithm: str = "ring"  # "ring" or "hierarchical" (analysis/collectives.py)
    stages: tuple[Stage, ...] = ()  # one run's stages (a ring: one)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "phase": self.phase,
                "buffer_bytes": self.bytes, "per_step": self.count,
                "sent_per_device": self.sent, "time_s": self.time_s, "group": self.group,
                "link": self.link, "algorithm": self.algorithm,
                "stages": [x.to_dict() for x in self.stages]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class LayerTraffic:
    """One unit the plan communicates by (a repeated block, or the rest of the model): its
    parameters, their bytes, and the bytes each device sends for it per step."""

    module: str
    params: int
    bytes: int
    sent: float

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "params": self.params, "weight_bytes": self.bytes,
                "sent_per_device": self.sent}  # fmt: skip


@dataclass(frozen=True)
class Communication:
    """The communication of one step of one device (see the module docstring)."""

    devices: int
    zero: int
    gpus_per_node: int
    link: Link | None  # None: no link named (bytes only, times 0)
    overlap: str
    collectives: list[Collective]
    layers: list[LayerTraffic] = field(default_factory=list)
    total_devices: int = 0  # every device of the plan (0: ``devices``, data parallel alone)
    algorithm: str = "ring"  # the plan's collective algorithm: auto, ring or hierarchical
    shard_group: int = 0  # hybrid sharding: ZeRO within groups of this many (0: all devices)
    nics_per_node: int = 0  # 0: one NIC per GPU

    @property
    def nodes(self) -> int:
        return -(-max(self.devices, self.total_devices) // self.gpus_per_node)

    @property
    def sent(self) -> float:
        return sum(c.sent for c in self.collectives)

    @property
    def time_s(self) -> float:
        return sum(c.time_s for c in self.collectives)

    def exposed_s(self, compute_s: float) -> float:
        """The communication time the step waits for: all of it with no overlap; with full
        overlap only what the compute does not hide."""
        return self.time_s if self.overlap == "none" else max(0.0, self.time_s - compute_s)

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "zero_stage": self.zero,
                "gpus_per_node": self.gpus_per_node,
                "nodes": self.nodes, "total_devices": max(self.devices, self.total_devices),
                "link": None if self.link is None else self.link.to_dict(),
                "overlap": self.overlap, "sent_per_device": self.sent, "time_s": self.time_s,
                "collectives": [c.to_dict() for c in self.collectives],
                "per_layer": [x.to_dict() for x in self.layers],
                "collective_algorithm": self.algorithm, "shard_group": self.shard_group or None,
                "nics_per_node": self.nics_per_node or self.gpus_per_node}  # fmt: skip


def plan_link(intra: str | None, inter: str | None, devices: int, gpus_per_node: int) -> Link:
    """The link a ring over ``devices`` runs at: ``intra`` within one node; beyond, the slower
    of ``intra`` and ``inter`` (bandwidth and latency apart)."""
    if intra is None:
        raise InputError("the chip names no intra-node link: name one with --intra (e.g. nvlink4)")
    try:
        near = link(intra)
        if devices <= gpus_per_node:
            return near
        if inter is None:
            raise InputError(f"{devices} devices over nodes of {gpus_per_node} need an "
                             "inter-node link: name one with --inter (e.g. ib-ndr)")  # fmt: skip
        far = link(inter)
    except ValueError as e:
        raise InputError(str(e)) from None
    return merged(near, far)


def _plan(grads: int, weights: int, zero: int, k: int, n: int, group: int,
          stride: int) -> list[tuple[str, str, str, int, int, int, int]]:  # fmt: skip
    """(kind, what, phase, bytes, per step, group, stride) of the data-parallel collectives;
    ``group`` < ``n``: hybrid sharding, ZeRO within groups of ``group`` consecutive replicas
    and an all-reduce of each device's 1/group gradient shard across the n/group groups."""
    g, s = (n, stride) if not group or group == n else (group, stride)
    plan: list[tuple[str, str, str, int, int, int, int]] = []
    if zero <= 1 and g == n:
        plan.append(("all-reduce", "gradients", "backward", grads, 1, n, s))
    else:
        plan.append(("reduce-scatter", "gradients", "backward", grads, k if zero >= 2 else 1,
                     g, s))  # fmt: skip
        if g < n:
            plan.append(("all-reduce", "gradient shard", "backward", -(-grads // g), 1,
                         n // g, g * s))  # fmt: skip
        if zero <= 2:
            plan.append(("all-gather", "updated weights", "optimizer", grads, 1, g, s))
    if zero == 3:
        plan[:0] = [("all-gather", "weights", "forward", weights, k, g, s),
                    ("all-gather", "weights", "backward", weights, k, g, s)]  # fmt: skip
    return [x for x in plan if x[5] > 1]


def _priced(fab: Fabric | None, ring: Link | None, kind: str, nbytes: int, g: int,
            stride: int) -> Priced:  # fmt: skip
    """One run over ``fab`` (its algorithm), or a flat ring at ``ring`` without a fabric."""
    if fab is not None:
        return fab.price(kind, nbytes, g, stride)
    return Fabric(ring, ring, 1 << 30, "ring").ring(kind, nbytes, g)


def step_communication(categories: dict[str, int], report: Report, *, devices: int, zero: int,
                       accumulate: int, ring: Link | None, gpus_per_node: int = 8,
                       overlap: str = "none", extra: tuple[Any, ...] = (),
                       total: int = 0, fabric: Fabric | None = None, shard_group: int = 0,
                       stride: int = 1,
                       experts: tuple[int, int, int, int, int] | None = None,
                       ) -> Communication:  # fmt: skip
    """The collectives of one step over ``devices`` data-parallel replicas (``stride`` devices
    apart) at ZeRO ``zero``: a flat ring on link ``ring``, or with ``fabric`` its algorithm
    (``analysis/collectives.py``); ``shard_group``: hybrid sharding (ZeRO within groups of
    that many replicas); ``extra`` (kind, what, phase, bytes, per step, group, link) those of
    tensor / pipeline groups, flat rings; ``experts`` (expert gradient bytes, expert weight
    bytes, expert data-parallel replicas, their shard group (0: all), stride): the expert
    states' collectives, apart from the rest (``categories`` then holds the rest)."""
    if overlap not in OVERLAPS:
        raise InputError(f"unknown overlap {overlap!r}; use one of {', '.join(OVERLAPS)}")
    grads, weights, k, n = categories["gradients"], categories["weights"], accumulate, devices
    plans = [("", _plan(grads, weights, zero, k, n, shard_group, stride))]
    if experts is not None:
        eg, ew, en, egroup, estride = experts
        plans.append(("expert ", _plan(eg, ew, zero, k, en, egroup, estride)))
    collectives = []
    for prefix, rows in plans:
        for kind, what, phase, b, c, g, s in rows:
            p = _priced(fabric, ring, kind, b, g, s)
            collectives.append(Collective(kind, prefix + what, phase, b, c, p.sent * c,
                                          p.time_s * c, g, p.link if fabric is not None
                                          or ring is None else ring.name, p.algorithm,
                                          p.stages))  # fmt: skip
    # per unit only for data parallelism alone: a tensor / pipeline device holds a share
    layers = [] if extra else _layers(report, categories, collectives, n)
    for kind, what, phase, b, c, g, ln in extra:
        p = _priced(None, ln, kind, b, g, 1)
        collectives.append(Collective(kind, what, phase, b, c, p.sent * c, p.time_s * c, g,
                                      "" if ln is None else ln.name, p.algorithm, p.stages))
    algorithm = "ring" if fabric is None else fabric.algorithm
    nics = 0 if fabric is None else fabric.nics_per_node
    group = shard_group if shard_group and shard_group < n else 0
    return Communication(n, zero, gpus_per_node, ring, overlap, collectives, layers, total,
                         algorithm, group, nics)  # fmt: skip


REST_UNITS = ("(outside the layers)", "(the model)")  # the unit that is not a layer


def _units(report: Report) -> list[tuple[str, int, int]]:
    """(name, parameters, trainable parameters) of the units a sharded step communicates by:
    each child of an ``nn.ModuleList`` (a transformer's layers, as FSDP's auto-wrap policy
    wraps them) and the rest of the model as one."""
    units, inside = [], 0
    trainable_inside = 0
    for node in report.modules():
        if node.type == "ModuleList":
            for child in node.children:
                p = child.total_params()
                units.append((child.name, p.params, p.trainable))
                inside += p.params
                trainable_inside += p.trainable
    total = report.root.total_params()
    rest = (REST_UNITS[0] if units else REST_UNITS[1], total.params - inside,
            total.trainable - trainable_inside)  # fmt: skip
    return [rest, *units] if rest[1] else units


def fsdp_units(report: Report) -> list[tuple[str, int, int]]:
    """(name, parameters, trainable parameters) of FSDP's units: each child of an
    ``nn.ModuleList`` and the rest of the model as one (the whole model without a list)."""
    return _units(report)


def _walk(report: Report) -> tuple[Any, list[tuple[str, int, int]]]:
    """The report's parameter totals and units (a walk of its tree: about 5 ms for
    Llama-2-7B, so a sweep over devices repeats it rather than keeping reports alive)."""
    return report.root.total_params(), _units(report)


def _layers(report: Report, categories: dict[str, int], collectives: list[Collective],
            devices: int) -> list[LayerTraffic]:  # fmt: skip
    """Each unit's share of the traffic: the weights' collectives by its parameters, the
    gradients' by its trainable ones."""
    total, units = _walk(report)
    out = []
    for name, params, trainable in units:
        sent = 0.0
        for c in collectives:
            of, whole = (params, total.params) if c.what == "weights" else (trainable,
                                                                             total.trainable)
            sent += c.sent * of / whole if whole else 0.0
        wbytes = categories["weights"] * params // max(total.params, 1)
        out.append(LayerTraffic(name, params, wbytes, sent))
    return out


__all__ = ["KINDS", "OVERLAPS", "REST_UNITS", "Collective", "Communication", "LayerTraffic", "plan_link",
           "fsdp_units", "ring_sent", "ring_steps", "step_communication"]  # fmt: skip
