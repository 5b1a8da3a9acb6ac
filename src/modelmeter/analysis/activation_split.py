"""Saved activations per device under tensor, sequence and pipeline parallelism: pure
arithmetic on the traced step's saved storages (``StepMemory.saved_storages``: when each was
made, its bytes, and whether it lies in the tensor-parallel region, ``tp_region``).

* **Tensor parallel of degree t** (Megatron): a storage inside the column -> row-parallel
  region (Q, K, V, scores, softmax, attention dropout, context, the MLP's inner activations,
  the logits of a vocabulary-parallel head) is 1/t on each device; one outside it (the layers'
  inputs and outputs, residuals, norms' inputs, outputs and statistics, the dropouts after the
  row-parallel linears, the embeddings) is whole on each device.
* **Sequence parallelism** splits what tensor parallelism leaves whole along the sequence:
  every saved activation is 1/t (Korthikanti et al. 2022, 34/t + 5as/(ht)).
* **Pipeline of p stages, v virtual stages each**: the layers (children of an
  ``nn.ModuleList``) are cut in p·v chunks, chunk c on stage c mod p; what the forward makes
  before the first layer (embeddings) belongs to chunk 0, what it makes after the last (final
  norm, head, outputs) to chunk p·v-1. v = 1 cuts the L layers as evenly as they go, the first
  L mod p stages one layer more; v > 1 needs L divisible by p·v. A stage holds the saved
  activations of the micro-batches whose forward has run and whose backward has not:
  GPipe all m; 1F1B min(p - s, m) on stage s (its p - s - 1 warm-up forwards and one more);
  interleaved 1F1B (Narayanan et al. 2021; Megatron-LM's schedule) runs 2(p - s - 1) + (v-1)p
  warm-up chunk-forwards, or all m·v when m = p, then one forward and one backward at a time:
  stage 0 holds vp + p - 1 chunks of L/(pv) layers = L(1 + (p-1)/(pv)) layers' activations of
  one micro-batch, against L (p micro-batches of L/p layers) without interleaving. The figures
  below follow the schedule op by op for each stage and report the worst stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.events import StepMemory
    from modelmeter.report import Report

SCHEDULES = ("1f1b", "gpipe")


@dataclass(frozen=True, slots=True)
class ActivationPlaces:
    """One micro-batch's saved bytes, (outside, inside) the tensor-parallel region, made
    before the first layer, in each layer, and after the last."""

    before: tuple[int, int]
    layers: tuple[tuple[int, int], ...]
    after: tuple[int, int]

    @property
    def total(self) -> int:
        return sum(sum(p) for p in (self.before, *self.layers, self.after))

    @property
    def split(self) -> int:
        return sum(p[1] for p in (self.before, *self.layers, self.after))


def _layer_starts(report: Report) -> list[tuple[int, int]]:
    """(first, last) forward event index of each repeated layer that ran, in run order."""
    out = []
    for node in report.modules():
        if node.type != "ModuleList":
            continue
        for child in node.children:
            seqs = [rec.seq for n in child.walk() for rec in n.ops
                    if rec.phase == "forward" and rec.seq >= 0]  # fmt: skip
            if seqs:
                out.append((min(seqs), max(seqs)))
    return sorted(out)


def places_of(report: Report, memory: StepMemory) -> ActivationPlaces:
    """The saved storages of ``memory`` by place: a storage made at event i belongs to the
    last layer that began at or before i (before the first: ``before``; after the last
    layer's last op: ``after``)."""
    spans = _layer_starts(report)
    before, after = [0, 0], [0, 0]
    layers = [[0, 0] for _ in spans]
    j = 0
    for born, nbytes, inside in memory.saved_storages:
        while j < len(spans) and spans[j][0] <= born:
            j += 1
        if j == 0:
            slot = before
        elif j == len(spans) and born > spans[-1][1]:
            slot = after
        else:
            slot = layers[j - 1]
        slot[1 if inside else 0] += nbytes
    return ActivationPlaces(tuple(before), tuple(tuple(x) for x in layers), tuple(after))  # type: ignore[arg-type]


def on_device(place: tuple[int, int], tensor: int, sequence_parallel: bool) -> int:
    """One device's bytes of a place: the region's 1/t, the rest whole (all 1/t with sequence
    parallelism); rounded up."""
    full, split = place
    if sequence_parallel:
        return -(-(full + split) // tensor)
    return full + -(-split // tensor)


def chunk_layers(layers: int, pipeline: int, virtual: int) -> list[int]:
    """The layers of each of the p·v chunks, in model order (v = 1: as even as they go)."""
    n = pipeline * virtual
    return [layers // n + (1 if c < layers % n else 0) for c in range(n)]


def in_flight(stage: int, pipeline: int, virtual: int, micro_batches: int,
              schedule: str, chunk_bytes: list[int]) -> tuple[int, float]:  # fmt: skip
    """(the most saved bytes stage ``stage`` holds at once, and as micro-batches of its
    chunks) under the schedule; ``chunk_bytes``: one micro-batch's bytes of each of the p·v
    chunks."""
    p, v, m, s = pipeline, virtual, micro_batches, stage
    mine = [chunk_bytes[c * p + s] for c in range(v)]  # this stage's chunks, c = 0 .. v-1
    one = sum(mine)
    if p == 1:
        return one, 1.0
    if schedule == "gpipe":
        return m * one, float(m)
    if v == 1:
        k = min(p - s, m)
        return k * one, float(k)
    total = m * v
    warm = total if m == p else min(2 * (p - s - 1) + (v - 1) * p, total)

    def fwd(k: int) -> int:
        return mine[(k % (p * v)) // p]

    def bwd(k: int) -> int:
        return mine[v - 1 - (k % (p * v)) // p]

    held = sum(fwd(k) for k in range(warm))
    best = held
    # steady state: one forward, then one backward; the pattern repeats every p·v steps
    for i in range(min(total - warm, 2 * p * v)):
        held += fwd(warm + i)
        best = max(best, held)
        held -= bwd(i)
    return best, best / one if one else 0.0


@dataclass(frozen=True, slots=True)
class DeviceActivations:
    """The saved activations one device holds: one stage's (``stage``, 0-based; on a result,
    the stage with the largest peak), one micro-batch's (``micro_batch``) and at once under
    the schedule (``held``, ``in_flight`` micro-batches of its layers)."""

    micro_batch: int
    held: int
    in_flight: float
    stage: int
    schedule: str
    tensor: int
    sequence_parallel: bool
    split: int  # bytes of one micro-batch (whole model) inside the tensor-parallel region

    def to_dict(self) -> dict[str, Any]:
        return {"micro_batch_bytes": self.micro_batch, "held_bytes": self.held,
                "in_flight": self.in_flight, "stage": self.stage, "schedule": self.schedule,
                "tensor": self.tensor, "sequence_parallel": self.sequence_parallel,
                "tensor_region_bytes": self.split}  # fmt: skip


def device_activations(places: ActivationPlaces, tensor: int = 1, pipeline: int = 1,
                       micro_batches: int = 1, *, virtual: int = 1, schedule: str = "1f1b",
                       sequence_parallel: bool = False) -> DeviceActivations:  # fmt: skip
    """The worst stage's saved activations on one device (see the module docstring)."""
    best = None
    for act in stage_activations(places, tensor, pipeline, micro_batches, virtual=virtual,
                                 schedule=schedule, sequence_parallel=sequence_parallel):  # fmt: skip
        if best is None or act.held > best.held:
            best = act
    return best  # type: ignore[return-value]


def stage_activations(places: ActivationPlaces, tensor: int = 1, pipeline: int = 1,
                      micro_batches: int = 1, *, virtual: int = 1, schedule: str = "1f1b",
                      sequence_parallel: bool = False) -> list[DeviceActivations]:  # fmt: skip
    """The saved activations one device of each pipeline stage holds, stage 0 first."""
    p, v = pipeline, virtual
    per_layer = [on_device(x, tensor, sequence_parallel) for x in places.layers]
    chunks, i = [], 0
    for n in chunk_layers(len(per_layer), p, v) if per_layer else [0] * (p * v):
        chunks.append(sum(per_layer[i:i + n]))
        i += n
    chunks[0] += on_device(places.before, tensor, sequence_parallel)
    chunks[-1] += on_device(places.after, tensor, sequence_parallel)
    sched = "-" if p == 1 else ("interleaved 1f1b" if v > 1 else schedule)
    out = []
    for s in range(p):
        held, k = in_flight(s, p, v, micro_batches, schedule, chunks)
        one = sum(chunks[c * p + s] for c in range(v))
        out.append(DeviceActivations(one, held, k, s, sched, tensor, sequence_parallel,
                                     places.split))  # fmt: skip
    return out


__all__ = ["SCHEDULES", "ActivationPlaces", "DeviceActivations", "chunk_layers",
           "device_activations", "in_flight", "on_device", "places_of", "stage_activations"]  # fmt: skip
