"""One device's peak under a sharded plan: the traced step's timeline re-weighed with the
device's share of each category, plus the weights ZeRO-3 / FSDP gathers while a unit runs.
Pure arithmetic on a traced step (its memory timeline, the gradients' births, the module tree).

The traced timeline is one device running the whole step: after event i it holds ``live[i]``
non-static bytes, of which ``made[i]`` are gradients (born at or before i). A device of the
plan holds instead (rg: its share of the gradients, ``sharded.gradients / gradients``; ro: of
the optimizer's, ``sharded.optimizer / (master + states)``):

* forward, backward, recompute: ``live - made + rg·made + gathered(phase)`` (the gradients
  are reduce-scattered as they are made: a ZeRO-2/3 device keeps its partition; gradient
  buckets are not modelled); a forward or backward op of micro-batch 2..k also holds
  ``rg·(every gradient - those made before i)``, as the single-device peak does;
* optimizer: ``rg·made + ro·(live - made)`` (the optimizer steps the device's partition: its
  temporaries, the foreach square roots and the fp32 casts, shrink with it);

on top of its static model states (weights, buffers, master weights, optimizer states after
ZeRO and the split). Without sharding (ZeRO-0, one device) this is the traced peak exactly.

**Gathered weights (ZeRO-3, FSDP full or hybrid shard).** A device keeps 1/N (1/G) of the
weights; to run a unit it all-gathers the unit's full weights into a buffer of their own (the
shard stays allocated). Units are FSDP's auto-wrap units: each child of an ``nn.ModuleList``
(a transformer's layers) and the rest of the model as one (the whole model if it has no
``nn.ModuleList``). Assumption (FSDP's default forward and backward prefetch, limit 1): two
units' full weights are alive at once, the one running and the next one prefetched, in the
forward and in the backward; the backward also holds the full gradient of the unit being
reduce-scattered. Bounded by the two largest units: forward W1 + W2, backward W1 + W2 + G1
(W: a unit's weights at the model's dtype, G: its trainable parameters at the gradients').
The optimizer runs on the shards: nothing gathered. Under tensor parallelism a unit's bytes
are the device's slice (the split modules' parameters / t).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.communication import fsdp_units

if TYPE_CHECKING:
    from modelmeter.analysis.sharding import ShardedStates
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
class DevicePeak:
    """The most bytes one device of the plan holds at once, and when; split into its static
    model states, the gradients then held, the gathered weights then held, and the rest
    (activations and temporaries)."""

    bytes: int
    phase: str
    op: str
    module: str
    later: bool
    states: int
    gradients: int
    gathered: int
    gathered_units: Gathered = NONE

    @property
    def other(self) -> int:
        return self.bytes - self.states - self.gradients - self.gathered

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "phase": self.phase, "op": self.op, "module": self.module,
                "later_micro_batch": self.later, "model_states": self.states,
                "gradients": self.gradients, "gathered_weights": self.gathered,
                "activations_and_temporaries": self.other,
                "gathered": self.gathered_units.to_dict()}  # fmt: skip


def gathered_weights(report: Report, categories: dict[str, int],
                     tensor_share: Fraction = Fraction(1)) -> Gathered:  # fmt: skip
    """The ZeRO-3 transient of ``report``'s units (module docstring), each unit's bytes its
    share of the categories' weights and gradients (times ``tensor_share`` under tensor
    parallelism)."""
    units = fsdp_units(report)
    total = report.root.total_params()
    if not units or not total.params:
        return NONE
    w, g = categories["weights"], categories["gradients"]
    sized = sorted(((w * p // total.params, g * t // max(total.trainable, 1), name)
                    for name, p, t in units), key=lambda x: -x[0])  # fmt: skip
    top = sized[:2]
    weights = sum(x[0] for x in top)
    grads = max(x[1] for x in sized)

    def part(n: int) -> int:
        return -(-n * tensor_share.numerator // tensor_share.denominator)

    return Gathered(tuple(x[2] for x in top), part(weights), part(weights + grads))


def _phases(report: Report) -> dict[int, tuple[str, str, str]]:
    return {rec.seq: (node.name, rec.op, rec.phase) for node in report.modules()
            for rec in node.ops}  # fmt: skip


def device_peak(result: Any, sharded: ShardedStates, gathered: Gathered = NONE) -> DevicePeak:
    """One device's peak (module docstring) of ``result`` (a traced ``TrainingResult``) whose
    model states per device are ``sharded``."""
    m = result.memory
    full_opt = m.master + sum(m.states.values())
    rg = sharded.gradients / m.gradients if m.gradients else 1.0
    ro = sharded.optimizer / full_opt if full_opt else 1.0
    where = _phases(result.report)
    born = sorted(m.grad_born)
    total_g = sum(n for _, n in born)
    extra = total_g if result.accumulate > 1 else None  # later micro-batches hold them all
    best, at = -1.0, (-1, False)
    lt = le = made_before = made = 0  # gradient bytes born before event i, and up to it
    for i, live in enumerate(m.timeline):
        while lt < len(born) and born[lt][0] < i:
            made_before += born[lt][1]
            lt += 1
        le, made = max(le, lt), max(made, made_before)
        while le < len(born) and born[le][0] <= i:
            made += born[le][1]
            le += 1
        phase = where.get(i, ("", "", "optimizer"))[2]
        if phase == "optimizer":
            dev = rg * made + ro * (live - made)
        else:
            dev = live - made + rg * made + gathered.at(phase)
            if extra is not None and dev + rg * (extra - made_before) > best:
                best, at = dev + rg * (extra - made_before), (i, True)
        if dev > best:
            best, at = dev, (i, False)
    i, later = at
    module, op, phase = where.get(i, ("", "-", "forward"))
    static = sharded.total - sharded.gradients
    held = sum(n for b, n in born if b <= i) + (total_g - sum(n for b, n in born if b < i)
                                                if later else 0)  # fmt: skip
    return DevicePeak(static + ceil(max(best, 0.0)), phase, op, module, later, static,
                      ceil(rg * held), gathered.at(phase) if i >= 0 else 0, gathered)  # fmt: skip


__all__ = ["NONE", "DevicePeak", "Gathered", "device_peak", "gathered_weights"]
