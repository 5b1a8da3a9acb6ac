"""Model-state memory per device under ZeRO data parallelism (Rajbhandari et al., "ZeRO:
Memory Optimizations Toward Training Trillion Parameter Models", 2020): pure arithmetic on a
traced step's categories.

Over N data-parallel devices, each holds a full replica of every category (stage 0, plain
data parallelism) except what its stage partitions: stage 1 the optimizer states (the fp32
master weights with them, as the paper counts the K = 12 bytes of mixed-precision Adam), stage
2 also the gradients, stage 3 also the weights. A partitioned category costs each device
ceil(bytes / N); buffers are never partitioned. Activations, the communication and the
gathered weights that stage 3 holds while a layer runs are not in these figures (the gathered
weights and the per-device peak: ``analysis/device_peak.py``).

Hybrid sharding (FSDP's HYBRID_SHARD, DeepSpeed's ZeRO++ hpZ for the weights): the stage
partitions over a group of G devices (one node by default) and the N/G groups replicate it, so
a partitioned category costs ceil(bytes / G). A node's group over fewer replicas than a node
holds shrinks to them (``group_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.errors import InputError

ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True, slots=True)
class ShardedStates:
    """One device's model states: weights, buffers, gradients, and the optimizer's (master
    weights and states), in bytes."""

    devices: int
    stage: int
    weights: int
    buffers: int
    gradients: int
    optimizer: int
    group: int = 0  # hybrid sharding: partitioned over groups of this many (0: all devices)
    # expert parallelism (analysis/expert_parallel.py): the expert data-parallel replicas the
    # expert states are reduced and partitioned over (0: no expert layers split), and the
    # expert states' bytes within the figures above
    expert_data: int = 0
    expert_states: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.buffers + self.gradients + self.optimizer

    def to_dict(self) -> dict[str, Any]:
        out = {"devices": self.devices, "zero_stage": self.stage, "weights": self.weights,
               "buffers": self.buffers, "gradients": self.gradients,
               "optimizer": self.optimizer, "total": self.total,
               "shard_group": self.group or None}  # fmt: skip
        if self.expert_data:  # a mixture-of-experts model split over devices
            out |= {"expert_data_parallel": self.expert_data, "expert_states": self.expert_states}
        return out


def zero_states(categories: dict[str, int], devices: int, stage: int,
                group: int | None = None) -> ShardedStates:  # fmt: skip
    """Per-device model states of a step's ``categories`` (``TrainingResult.categories``)
    over ``devices`` data-parallel devices at ZeRO ``stage``; ``group``: hybrid sharding,
    partitioned within groups of ``group`` devices (``check_shard_group``)."""
    if stage not in ZERO_STAGES:
        raise InputError(f"unknown ZeRO stage {stage!r}; use one of 0, 1, 2, 3")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise InputError(f"devices must be a whole number >= 1 (got {devices!r})")

    parts = check_shard_group(group, devices, stage) or devices

    def share(n: int, partitioned: bool) -> int:
        return -(-n // parts) if partitioned else n

    optimizer = categories["master weights"] + categories["optimizer states"]
    return ShardedStates(
        devices=devices,
        stage=stage,
        weights=share(categories["weights"], stage >= 3),
        buffers=categories["buffers"],
        gradients=share(categories["gradients"], stage >= 2),
        optimizer=share(optimizer, stage >= 1),
        group=parts if parts < devices else 0,
    )


def check_shard_group(group: int | None, devices: int, stage: int) -> int:
    """The hybrid-sharding group (0: none), or an InputError: it needs a ZeRO stage and must
    divide the data-parallel devices."""
    if group is None:
        return 0
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise InputError(f"the shard group must be a whole number >= 1 (got {group!r})")
    if stage == 0:
        raise InputError("a shard group (hybrid sharding) needs a ZeRO stage: give --zero 1, 2 "
                         "or 3")  # fmt: skip
    if devices % group:
        raise InputError(f"shard group {group} does not divide the {devices} data-parallel "
                         "devices")  # fmt: skip
    return group


def group_at(group: int | None, replicas: int, node: bool) -> int | None:
    """The shard group over ``replicas`` data-parallel replicas: ``group``, except that a
    node's group (``node``: ``--shard-group node``) shrinks to the replicas when they fill less
    than a node (one group: ZeRO over all of them)."""
    if node and group is not None and 0 < replicas < group:
        return replicas
    return group


__all__ = ["ZERO_STAGES", "ShardedStates", "check_shard_group", "group_at", "zero_states"]
