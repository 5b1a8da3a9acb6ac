"""The peak of a step on one device of a plan (ZeRO / FSDP full or hybrid shard, tensor,
sequence and pipeline parallelism), from the one-device trace: its timeline of live bytes
re-weighted op by op, plus the weights ZeRO-3 gathers while a unit runs. An approximation,
stated; pure arithmetic on a traced step (its memory timeline, the gradients' births, the
module tree).

After op i the traced step holds the static bytes (weights, buffers, master weights,
optimizer states), the gradients made so far (``made``), and the rest: saved activations
still alive and the op's temporaries. One device of the plan holds

* its static model states as the plan shards them (``analysis/sharding.py``,
  ``parallel.device_fraction``) and the gradients made so far times g, its share of them (the
  gradients are reduce-scattered as they are made: a ZeRO-2/3 device keeps its partition;
  gradient buckets are not modelled);
* in the forward, backward and recompute, the rest scaled as its saved activations are (one
  micro-batch of its stage's bytes over the whole model's: temporaries are taken to
  split as the saved activations do), plus ``held_extra``, the saved activations of the other
  micro-batches the schedule keeps in flight on that stage (``activation_split``), plus the
  weights ZeRO-3 has gathered in that phase (``Gathered.at``);
* in the optimizer's step, the rest (the foreach temporaries, fp32 casts) scaled as its
  optimizer bytes (master weights and states) are: a device steps only its partition, on the
  shards (nothing gathered, no activations in flight).

With gradient accumulation a forward or backward op of micro-batches 2..k also holds every
gradient already made, times g (as ``training.find_peak``). On one device with no plan
(ZeRO-0) this is the traced peak, op for op.

**Gathered weights (ZeRO-3, FSDP full or hybrid shard).** A device keeps 1/N (1/G) of the
weights; to run a unit it all-gathers the unit's full weights into a buffer of their own (the
shard stays allocated). Units are FSDP's auto-wrap units: each child of an ``nn.ModuleList``
(a transformer's layers) and the rest of the model as one (the whole model if it has no
``nn.ModuleList``). Assumption (FSDP's default forward and backward prefetch, limit 1): two
units' full weights are alive at once, the one running and the next one prefetched, in the
forward and in the backward; the backward also holds the full gradient of the unit being
reduce-scattered. Bounded by the two largest units: forward W1 + W2, backward W1 + W2 + G1
(W: a unit's weights at the model's dtype, G: its trainable parameters at the gradients').
Under pipeline parallelism a stage gathers only its own units: the two largest of the worst
stage's (its layers, and the rest of the model on the stage that holds it).
Under tensor parallelism a unit's bytes are the device's slice (the split modules'
parameters / t).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.activation_split import chunk_layers
from modelmeter.analysis.communication import REST_UNITS, fsdp_units

if TYPE_CHECKING:
    from modelmeter.events import StepMemory
    from modelmeter.report import Report


@dataclass(frozen=True, slots=True)
class Gathered:
    """The ZeRO-3 transient: the two largest units, the bytes held in the forward and in the
    backward."""

    units: tuple[str, ...]
    forward: int
    backward: int

    def at(self, phase: str) -> int:
        if phase == "forward":
            return self.forward
        return self.backward if phase in ("backward", "recompute") else 0

    def to_dict(self) -> dict[str, Any]:
        return {"units": list(self.units), "forward": self.forward,
                "backward": self.backward}  # fmt: skip


NONE = Gathered((), 0, 0)


@dataclass(frozen=True, slots=True)
class DeviceShares:
    """What one device holds: static bytes and gradients (after the plan), and the scales of
    the rest: ``activations`` (its micro-batch's saved bytes over the whole model's),
    ``optimizer`` (its optimizer bytes over the whole), ``held_extra`` (the other in-flight
    micro-batches' saved bytes), ``gathered`` (ZeRO-3's gathered weights)."""

    static: int
    gradients: int
    activations: float
    optimizer: float
    held_extra: int
    gathered: Gathered = NONE


@dataclass(frozen=True, slots=True)
class DevicePeak:
    """The most bytes one device of the plan holds at once, and after which op (as
    ``training.Peak``); split into its static model states, the gradients then held, the
    gathered weights then held, and the rest (activations, in-flight micro-batches and
    temporaries)."""

    bytes: int
    phase: str
    op: str
    module: str
    later: bool = False
    states: int = 0
    gradients: int = 0
    gathered: int = 0
    gathered_units: Gathered = NONE
    stage: int = 0  # the pipeline stage (0-based) whose device this is: the worst one

    @property
    def other(self) -> int:
        return self.bytes - self.states - self.gradients - self.gathered

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "phase": self.phase, "op": self.op, "module": self.module,
                "later_micro_batch": self.later, "model_states": self.states,
                "gradients": self.gradients, "gathered_weights": self.gathered,
                "activations_and_temporaries": self.other,
                "gathered": self.gathered_units.to_dict(), "stage": self.stage}  # fmt: skip


def gathered_weights(report: Report, categories: dict[str, int],
                     tensor_share: Fraction = Fraction(1), pipeline: int = 1,
                     virtual: int = 1, rest_places: tuple[int, int] | None = None,
                     tied: int = 0) -> Gathered:  # fmt: skip
    """The ZeRO-3 transient of the worst pipeline stage (``stage_gathered``)."""
    best = NONE
    for this in stage_gathered(report, categories, tensor_share, pipeline, virtual, rest_places,
                               tied):  # fmt: skip
        if (this.backward, this.forward) > (best.backward, best.forward):
            best = this
    return best


def stage_gathered(report: Report, categories: dict[str, int],
                   tensor_share: Fraction = Fraction(1), pipeline: int = 1, virtual: int = 1,
                   rest_places: tuple[int, int] | None = None,
                   tied: int = 0) -> list[Gathered]:  # fmt: skip
    """The ZeRO-3 transient of ``report``'s units (module docstring) on each of the
    ``pipeline`` stages (``virtual`` chunks each; a stage gathers only what it runs:
    ``stage_units``), each unit's bytes its share of the categories' weights and gradients
    (times ``tensor_share`` under tensor parallelism)."""
    units = fsdp_units(report)
    total = report.root.total_params()
    if not units or not total.params:
        return [NONE] * max(pipeline, 1)
    w, g = categories["weights"], categories["gradients"]

    def part(n: int) -> int:
        return -(-n * tensor_share.numerator // tensor_share.denominator)

    out = []
    for stage in stage_units(units, pipeline, virtual, rest_places, tied):
        if not stage:
            out.append(NONE)
            continue
        sized = sorted(((w * p // total.params, g * t // max(total.trainable, 1), name)
                        for name, p, t in stage), key=lambda x: -x[0])  # fmt: skip
        top = sized[:2]
        weights = sum(x[0] for x in top)
        grads = max(x[1] for x in sized)
        out.append(Gathered(tuple(x[2] for x in top), part(weights), part(weights + grads)))
    return out


def stage_units(units: list[tuple[str, int, int]], pipeline: int = 1, virtual: int = 1,
                rest_places: tuple[int, int] | None = None,
                tied: int = 0) -> list[list[tuple[str, int, int]]]:  # fmt: skip
    """``fsdp_units`` by pipeline stage (one list per stage, maybe empty): the layers cut in
    pipeline x virtual chunks in model order (``activation_split.chunk_layers``), chunk c on
    stage c mod pipeline; the rest of the model (one unit) as ``parallel.stage_params``
    places it: its parameters that run after the last layer (``rest_places[1]``: final norm,
    head) on the last stage with the copy of a tied embedding (``tied`` parameters), the
    others (embeddings) on the first, trainable parameters in proportion; without places all
    on the first."""
    if pipeline < 2:
        return [units]
    rest = [u for u in units if u[0] in REST_UNITS]
    layers = [u for u in units if u[0] not in REST_UNITS]
    stages: list[list[tuple[str, int, int]]] = [[] for _ in range(pipeline)]
    for name, n, t in rest:
        last = 0 if rest_places is None else min(rest_places[1], n)
        t_last = t * last // n if n else 0
        stages[0] += [(name, n - last, t - t_last)] if n - last else []
        copy = (tied, t * tied // n) if n and tied else (0, 0)
        if last + copy[0]:
            stages[-1].append((name, last + copy[0], t_last + copy[1]))
    i = 0
    for c, n in enumerate(chunk_layers(len(layers), pipeline, virtual)):
        stages[c % pipeline] += layers[i:i + n]
        i += n
    return stages


def timeline_rows(report: Report, memory: StepMemory) -> tuple[list[tuple], dict]:
    """What ``device_peak`` reads of a trace, once for any number of plans: (event index,
    phase, gradient bytes made before it, made by it, the rest live after it) of each op, and
    where each op ran (module, op, phase)."""
    where = {rec.seq: (node.name, rec.op, rec.phase) for node in report.modules()
             for rec in node.ops}  # fmt: skip
    return list(_rows(memory, where)), where


def device_peak(report: Report, memory: StepMemory, accumulate: int, shares: DeviceShares,
                rows: tuple[list[tuple], dict] | None = None) -> DevicePeak:  # fmt: skip
    """The device's peak (see the module docstring); ``rows``: ``timeline_rows`` of the
    trace, when already made."""
    rows, where = timeline_rows(report, memory) if rows is None else rows
    total = sum(n for _, n in memory.grad_born)
    g = shares.gradients / total if total else 0.0
    held, gat = shares.held_extra, shares.gathered
    best, best_at, later = -1.0, (-1, 0), False  # (event, gradient bytes then held)
    for i, phase, _, made_le, rest in rows:  # each op as it ran
        if phase == "optimizer":
            value = made_le * g + rest * shares.optimizer
        else:
            value = made_le * g + rest * shares.activations + held + gat.at(phase)
        if value > best:
            best, best_at = value, (i, made_le)
    if accumulate > 1 and total:  # a forward or backward op of micro-batches 2..k
        for i, phase, made_lt, made_le, rest in rows:
            if phase == "optimizer":
                continue
            grads = total - made_lt + made_le
            value = grads * g + rest * shares.activations + held + gat.at(phase)
            if value > best:
                best, best_at, later = value, (i, grads), True
    i, grads = best_at
    module, op, phase = where.get(i, ("", "-", "forward"))
    return DevicePeak(shares.static + max(round(best), 0), phase, op, module, later,
                      shares.static, round(grads * g), gat.at(phase) if i >= 0 else 0,
                      gat)  # fmt: skip


def _rows(memory: StepMemory, where: dict[int, tuple[str, str, str]]) -> Any:
    """(event index, phase, gradient bytes made before it, made by it, the rest live after
    it) for each op of the timeline."""
    born = sorted(memory.grad_born)
    lt = le = made_lt = made_le = 0
    for i, live in enumerate(memory.timeline):
        while lt < len(born) and born[lt][0] < i:
            made_lt += born[lt][1]
            lt += 1
        while le < len(born) and born[le][0] <= i:
            made_le += born[le][1]
            le += 1
        yield i, where.get(i, ("", "", "optimizer"))[2], made_lt, made_le, live - made_le


__all__ = ["NONE", "DevicePeak", "DeviceShares", "Gathered", "device_peak", "gathered_weights",
           "stage_gathered", "stage_units", "timeline_rows"]
