"""Tensor and pipeline parallelism over a traced step: the plan's checks, the model states
one device holds, and the collectives the split adds. Pure arithmetic on the Report.

Tensor parallel of degree t (Megatron-LM, Shoeybi et al. 2019): the weight matrices (the
parameters of ``Linear``, GPT-2's ``Conv1D``, ``Embedding`` and ``nn.MultiheadAttention``
modules) are split in t column
or row slices, the rest (norms, ...) replicated; each transformer layer all-reduces its
activations twice in the forward (after attention and after the MLP) and twice in the backward,
over the t devices: 4 all-reduces of the layer's output (b·s·h) per layer per micro-batch.

Pipeline parallel of p stages: the repeated layers (the children of an ``nn.ModuleList``) are
cut in p stages of ceil(L/p) layers; the stage that also holds the rest (embeddings, head) is
the one reported. Each stage boundary sends the activations forward and their gradients back
per micro-batch (point-to-point); with m micro-batches a 1F1B or GPipe schedule idles for a
bubble of (p-1)/(m+p-1) of the step.

Data parallelism (and ZeRO) runs over the d = N / (t·p) replicas.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, prod
from typing import TYPE_CHECKING, Any

from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.report import Report

# the weight matrices Megatron slices (attention's by heads)
SPLIT_TYPES = ("Linear", "Conv1D", "Embedding", "MultiheadAttention",
               "NonDynamicallyQuantizableLinear")  # fmt: skip
_STATES = ("weights", "master weights", "gradients", "optimizer states")


@dataclass(frozen=True, slots=True)
class Layout:
    """What a plan needs of the model: its parameters, those in split modules, the repeated
    layers (count, parameters of one) and the bytes of one layer's output (one micro-batch)."""

    params: int
    split: int
    layers: int
    layer_params: int
    boundary_bytes: int
    heads: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "split_params": self.split, "layers": self.layers,
                "layer_params": self.layer_params, "boundary_bytes": self.boundary_bytes,
                "heads": self.heads}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParallelPlan:
    """Tensor degree, pipeline stages, micro-batches and data-parallel replicas."""

    tensor: int
    pipeline: int
    micro_batches: int
    data: int

    @property
    def model_parallel(self) -> int:
        return self.tensor * self.pipeline

    @property
    def bubble(self) -> float:
        """The pipeline's idle fraction of the step: (p-1)/(m+p-1)."""
        p, m = self.pipeline, self.micro_batches
        return (p - 1) / (m + p - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "pipeline": self.pipeline,
                "micro_batches": self.micro_batches, "data": self.data,
                "bubble": self.bubble}  # fmt: skip


def heads_of(model: Any) -> int | None:
    """The attention heads: a transformers config's, else the first module's ``num_heads``."""
    config = getattr(model, "config", None)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    if isinstance(heads, int):
        return heads
    for m in getattr(model, "modules", lambda: [])():
        h = getattr(m, "num_heads", None)
        if isinstance(h, int) and not isinstance(h, bool):
            return h
    return None


def layout(report: Report, heads: int | None, element_bytes: int) -> Layout:
    """The model's layout from the report's module tree (``element_bytes``: the activations'
    dtype size)."""
    total = report.root.total_params().params
    split = sum(n.own.params for n in report.modules() if n.type in SPLIT_TYPES)
    layers: list[Any] = []
    for node in report.modules():
        if node.type == "ModuleList":
            layers += node.children
    layer_params = layers[0].total_params().params if layers else 0
    shape = layers[0].output_shapes[0] if layers and layers[0].output_shapes else []
    boundary = prod(shape) * element_bytes if shape else 0
    return Layout(total, split, len(layers), layer_params, boundary, heads)


def check_plan(devices: int, tensor: int, pipeline: int, micro_batches: int,
               lay: Layout | None = None) -> ParallelPlan:  # fmt: skip
    """The plan, or one InputError saying why it cannot run."""
    for name, v in (("tensor parallel degree", tensor), ("pipeline stages", pipeline),
                    ("micro-batches", micro_batches)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a whole number >= 1 (got {v!r})")
    if devices % (tensor * pipeline):
        raise InputError(f"{devices} devices do not split into tensor {tensor} x pipeline "
                         f"{pipeline} = {tensor * pipeline} per replica")  # fmt: skip
    if lay is not None:
        if tensor > 1 and lay.heads is not None and lay.heads % tensor:
            raise InputError(f"tensor parallel degree {tensor} does not divide the model's "
                             f"{lay.heads} attention heads")  # fmt: skip
        if pipeline > 1 and lay.layers == 0:
            raise InputError("pipeline parallelism needs repeated layers (the children of an "
                             "nn.ModuleList); this model has none")  # fmt: skip
        if pipeline > lay.layers > 0:
            raise InputError(f"{pipeline} pipeline stages for {lay.layers} layers: at most one "
                             "stage per layer")  # fmt: skip
    return ParallelPlan(tensor, pipeline, micro_batches, devices // (tensor * pipeline))


def device_fraction(lay: Layout, plan: ParallelPlan) -> Fraction:
    """The share of the model's parameters one device holds: the worst pipeline stage (the
    rest of the model and ceil(L/p) layers), its split modules' parameters / t."""
    p, t = plan.pipeline, plan.tensor
    if not lay.params:
        return Fraction(1)
    stage = Fraction(1)
    if p > 1:
        rest = lay.params - lay.layers * lay.layer_params
        stage = Fraction(rest + -(-lay.layers // p) * lay.layer_params, lay.params)
    split = Fraction(lay.split, lay.params)
    return stage * (split / t + (1 - split))


def device_categories(categories: dict[str, int], lay: Layout,
                      plan: ParallelPlan) -> dict[str, int]:  # fmt: skip
    """The model-state categories one device of the plan holds (before ZeRO)."""
    f = device_fraction(lay, plan)
    return {k: ceil(v * f) if k in _STATES else v for k, v in categories.items()}


def split_collectives(lay: Layout, plan: ParallelPlan) -> list[tuple[str, str, str, int, int, int]]:
    """The collectives the split adds, per device per step: (kind, what, phase, buffer bytes,
    per step, group size). Tensor parallel: 2 all-reduces of each of the stage's layers'
    outputs in the forward and 2 in the backward per micro-batch; pipeline: each boundary
    sends the activations forward and receives their gradients per micro-batch."""
    m, t, p = plan.micro_batches, plan.tensor, plan.pipeline
    out = []
    if t > 1 and lay.layers:
        per_stage = -(-lay.layers // p)
        b = lay.boundary_bytes  # the whole b x s x h output, summed over the t slices
        out += [("all-reduce", "activations", "forward", b, 2 * per_stage * m, t),
                ("all-reduce", "activation gradients", "backward", b, 2 * per_stage * m, t)]
    if p > 1:
        b = lay.boundary_bytes // t  # each of the t slices sends its share
        out += [("send/recv", "activations", "forward", b, m, 2),
                ("send/recv", "activation gradients", "backward", b, m, 2)]
    return out


__all__ = ["SPLIT_TYPES", "Layout", "ParallelPlan", "check_plan", "device_categories",
           "device_fraction", "heads_of", "layout", "split_collectives"]  # fmt: skip
