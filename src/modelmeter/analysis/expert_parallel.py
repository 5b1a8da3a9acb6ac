"""Mixture-of-experts layers under tensor and expert parallelism, as Megatron-Core trains them:
the model states one device holds, their ZeRO partitions, and the token all-to-alls. Pure
arithmetic on the plan's ``Layout`` (``expert``, ``moe``: ``analysis/moe_layout.py``).

**Tensor parallel t** (expert tensor parallel = t, Megatron-Core's default): each expert's
FFN is a column/row pair like a dense MLP's (gate/up column-wise, down row-wise), so the
stacked expert weights are 1/t per device; the routers are replicated; shared experts are
MLPs, split as any. **Expert parallel e**: each MoE layer's E experts are spread over e of
the d = N/(t·p) data-parallel replicas, E/e on each: a device holds 1/(t·e) of the expert
weights and 1/t of the rest. Expert gradients are reduced over the d/e replicas that hold the
same experts (the expert data-parallel group), the rest over d; ZeRO partitions the expert
states over d/e and the rest over d. Hybrid sharding in groups of G replicas: a group of G
consecutive replicas holds G/e copies of each expert when e divides G, so the expert states
are partitioned over G/e; when G divides e a group holds one copy, and the expert states are
not partitioned (G and e that divide neither way are refused).

**All-to-alls.** Per MoE layer per micro-batch the token dispatcher sends each token's hidden
vector to the devices of its k experts and back (Megatron-Core's ``alltoall`` dispatcher):
dispatch and combine in the forward, their gradients in the backward, 4 all-to-alls over the
e devices of the expert group, each of a buffer of tokens·k·h at the activations' dtype per
device (tokens: the micro-batch's b·s on each device, b·s/t with sequence parallelism), of
which (e-1)/e leaves the device under uniform routing. Each all-to-all is priced as a
pairwise exchange (``collectives.ring_sent``): e-1 messages of S/e, one after the other,
each paying the link's latency. The compute and the saved activations per device do not
change with e in expectation: under uniform routing each device's experts receive, on
average, the tokens·k rows it sent away.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from math import ceil
from typing import TYPE_CHECKING

from modelmeter.analysis.parallel import device_fraction, stage_share
from modelmeter.analysis.sharding import ShardedStates, zero_states
from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.analysis.parallel import Layout, ParallelPlan

STATES = ("weights", "master weights", "gradients", "optimizer states")
A2A = "all-to-all"
# the all-to-alls of one MoE layer per micro-batch: (what, phase)
ALL_TO_ALLS = (("token dispatch", "forward"), ("token combine", "forward"),
               ("dispatch gradients", "backward"), ("combine gradients", "backward"))  # fmt: skip


def expert_fraction(lay: Layout, plan: ParallelPlan, stage: int | None = None) -> Fraction:
    """The share of the model's parameters that are expert weights on one device of stage
    ``stage`` (None: the stage holding the most): the stage's expert parameters
    (``parallel.stage_share``) / (t·e)."""
    if not lay.params or not lay.expert:
        return Fraction(0)
    return Fraction(stage_share(lay, plan, stage)[1], lay.params * plan.tensor * plan.expert)


def weight_share(lay: Layout, plan: ParallelPlan) -> Fraction:
    """The share of each unit's weights one device holds under the split: split modules 1/t,
    expert layers 1/(t·e), the rest whole."""
    if not lay.params:
        return Fraction(1)
    split, ex = Fraction(lay.split, lay.params), Fraction(lay.expert, lay.params)
    t = plan.tensor
    return split / t + ex / (t * plan.expert) + 1 - split - ex


def split_categories(categories: dict[str, int], lay: Layout, plan: ParallelPlan,
                     stage: int | None = None) -> tuple[dict[str, int], dict[str, int]]:  # fmt: skip
    """(the non-expert categories, the expert model states) one device of stage ``stage``
    holds before ZeRO; the expert part has only model states (no buffers, activations)."""
    f, fe = device_fraction(lay, plan, stage), expert_fraction(lay, plan, stage)
    dense = {k: ceil(v * (f - fe)) if k in STATES else v for k, v in categories.items()}
    expert = {k: ceil(v * fe) if k in STATES else 0 for k, v in categories.items()}
    return dense, expert


def expert_group(group: int | None, expert: int) -> int | None:
    """The shard group of the expert states, in expert data-parallel replicas, for a shard
    group of ``group`` replicas (None: ZeRO over all of them; see the module docstring)."""
    if group is None or expert < 2:
        return group
    if group % expert == 0:
        return group // expert
    if expert % group == 0:
        return 1
    raise InputError(f"shard group {group} and expert parallel degree {expert}: one must "
                     "divide the other (a group holds whole copies of the experts, or part "
                     "of one)")  # fmt: skip


def device_states(categories: dict[str, int], lay: Layout, plan: ParallelPlan, zero: int,
                  group: int | None, stage: int | None = None) -> ShardedStates:  # fmt: skip
    """One device's model states: the non-expert ones partitioned by ZeRO ``zero`` over the d
    replicas (``group``: hybrid sharding), the expert ones over the d/e expert data-parallel
    replicas (``expert_group``)."""
    dense, ex = split_categories(categories, lay, plan, stage)
    z = zero_states(dense, plan.data, zero, group)
    if not lay.expert:
        return z
    egroup = expert_group(group, plan.expert)
    ze = zero_states(ex, plan.data // plan.expert, zero, egroup)
    return replace(z, weights=z.weights + ze.weights, gradients=z.gradients + ze.gradients,
                   optimizer=z.optimizer + ze.optimizer, expert_data=plan.data // plan.expert,
                   expert_states=ze.total)  # fmt: skip


def expert_collectives(lay: Layout, plan: ParallelPlan) -> list[tuple[str, str, str, int, int, int]]:
    """The all-to-alls of expert parallelism per device per step: (kind, what, phase, buffer
    bytes, per step, group); 4 per MoE layer of the stage per micro-batch, each of
    tokens·k·h at the activations' dtype (the layer's output x k; / t with sequence
    parallelism), over the e devices of the expert group."""
    e = plan.expert
    if e < 2 or not lay.moe:
        return []
    n = -(-len(lay.moe) // plan.pipeline) * plan.micro_batches
    b = lay.boundary_bytes * lay.moe[0][1]
    if plan.sequence_parallel:
        b = -(-b // plan.tensor)
    return [(A2A, what, phase, b, n, e) for what, phase in ALL_TO_ALLS]


__all__ = ["A2A", "ALL_TO_ALLS", "STATES", "device_states", "expert_collectives",
           "expert_fraction", "expert_group", "split_categories",
           "weight_share"]  # fmt: skip
