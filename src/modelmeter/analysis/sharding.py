"""Model-state memory per device under ZeRO data parallelism (Rajbhandari et al., "ZeRO:
Memory Optimizations Toward Training Trillion Parameter Models", 2020): pure arithmetic on a
traced step's categories.

Over N data-parallel devices, each holds a full replica of every category (stage 0, plain
data parallelism) except what its stage partitions: stage 1 the optimizer states (the fp32
master weights with them, as the paper counts the K = 12 bytes of mixed-precision Adam), stage
2 also the gradients, stage 3 also the weights. A partitioned category costs each device
ceil(bytes / N); buffers are never partitioned. Activations, the communication and the
gathered weights that stage 3 holds while a layer runs are not in these figures.
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

    @property
    def total(self) -> int:
        return self.weights + self.buffers + self.gradients + self.optimizer

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "zero_stage": self.stage, "weights": self.weights,
                "buffers": self.buffers, "gradients": self.gradients,
                "optimizer": self.optimizer, "total": self.total}  # fmt: skip


def zero_states(categories: dict[str, int], devices: int, stage: int) -> ShardedStates:
    """Per-device model states of a step's ``categories`` (``TrainingResult.categories``)
    over ``devices`` data-parallel devices at ZeRO ``stage``."""
    if stage not in ZERO_STAGES:
        raise InputError(f"unknown ZeRO stage {stage!r}; use one of 0, 1, 2, 3")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise InputError(f"devices must be a whole number >= 1 (got {devices!r})")

    def share(n: int, partitioned: bool) -> int:
        return -(-n // devices) if partitioned else n

    optimizer = categories["master weights"] + categories["optimizer states"]
    return ShardedStates(
        devices=devices,
        stage=stage,
        weights=share(categories["weights"], stage >= 3),
        buffers=categories["buffers"],
        gradients=share(categories["gradients"], stage >= 2),
        optimizer=share(optimizer, stage >= 1),
    )


__all__ = ["ZERO_STAGES", "ShardedStates", "zero_states"]
