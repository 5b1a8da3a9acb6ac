"""Tensor and pipeline parallelism over a traced step: the plan's checks, the model states
one device holds, and the collectives the split adds. Pure arithmetic on the Report.

Tensor parallel of degree t (Megatron-LM, Shoeybi et al. 2019): the weight matrices (the
parameters of ``Linear``, GPT-2's ``Conv1D``, ``Embedding`` and ``nn.MultiheadAttention``
modules) are split in t column or row slices, the rest (norms, MLA's down-projections:
``frontends/torch/tp_region.py``) replicated; each transformer layer all-reduces its
activations twice in the forward (after attention and after the MLP) and twice in the backward,
over the t devices: 4 all-reduces of the layer's output (b·s·h) per layer per micro-batch.

Pipeline parallel of p stages: the repeated layers (the children of an ``nn.ModuleList``) are
cut in p stages as evenly as they go; the rest of the model goes where it runs (embeddings,
before the first layer, on the first stage; final norm and head on the last, with a copy of
a tied embedding's weight); ``stage_params`` gives each stage's parameters. Each stage boundary sends the activations forward and their gradients back
per micro-batch (point-to-point); with m micro-batches a 1F1B or GPipe schedule idles for a
bubble of (p-1)/(m+p-1) of the step.

With sequence parallelism (Korthikanti et al. 2022) each of those all-reduces runs as a
reduce-scatter and an all-gather of the same buffer (the same bytes and ring steps), and the
backward gathers each column-parallel linear's input once more for its weight gradient (the
input is kept split: Megatron-LM's ``LinearWithGradAccumulationAndAsyncCommunication``): 2
all-gathers more per layer per micro-batch. An interleaved schedule of v virtual stages
(Narayanan et al. 2021) idles (p-1)/(v·m) of the compute and sends v times the
point-to-point messages.

Data parallelism (and ZeRO) runs over the d = N / (t·p) replicas.

Mixture-of-experts layers (``moe_layout``): their stacked expert weights are split t ways
too (expert tensor parallel = t, Megatron-Core's default) and, with expert parallelism of
degree e, spread over e of the d replicas: 1/(t·e) per device; the routers are replicated
(``analysis/expert_parallel.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, prod
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.activation_split import SCHEDULES, chunk_layers
from modelmeter.analysis.moe_layout import check_experts, layer_experts, moe_layout, stage_experts
from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.report import Report

# the weight matrices Megatron slices (attention's by heads)
SPLIT_TYPES = ("Linear", "Conv1D", "Embedding", "MultiheadAttention",
               "NonDynamicallyQuantizableLinear")  # fmt: skip
_STATES = ("weights", "master weights", "gradients", "optimizer states")
TIED = "tied embedding gradients"  # what the first and last stage all-reduce, a tied weight's


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
    kv_heads: int | None = None  # key/value heads (grouped-query attention), None: as heads
    layer_sizes: tuple[int, ...] = ()  # each layer's parameters, in model order
    # the parameters outside the layers whose modules run before the first layer (embeddings:
    # the first stage's) and after the last (final norm, head: the last stage's); None: all
    # on the first stage
    rest_places: tuple[int, int] | None = None
    # a head that runs after the last layer on an embedding's weight (tied embeddings): the
    # parameters of the copy the last stage holds (Megatron-LM: the two stages all-reduce
    # its gradient)
    tied: int = 0
    expert: int = 0  # the expert layers' parameters (every expert's stacked weights)
    moe: tuple[tuple[int, int], ...] = ()  # (experts, experts per token) of each MoE layer
    layer_experts: tuple[int, ...] = ()  # each layer's expert parameters, in model order

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "split_params": self.split, "layers": self.layers,
                "layer_params": self.layer_params, "boundary_bytes": self.boundary_bytes,
                "heads": self.heads, "kv_heads": self.kv_heads,
                "expert_params": self.expert}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ParallelPlan:
    """Tensor degree, pipeline stages, micro-batches and data-parallel replicas."""

    tensor: int
    pipeline: int
    micro_batches: int
    data: int
    sequence_parallel: bool = False
    virtual: int = 1  # virtual stages per device (interleaved 1F1B when > 1)
    schedule: str = "1f1b"  # or "gpipe"
    expert: int = 1  # expert parallel degree: each MoE layer's experts over e of the d replicas

    @property
    def model_parallel(self) -> int:
        return self.tensor * self.pipeline

    @property
    def bubble_ratio(self) -> float:
        """The pipeline's idle time over the compute: (p-1)/(v·m)."""
        return (self.pipeline - 1) / (self.virtual * self.micro_batches)

    @property
    def bubble(self) -> float:
        """The pipeline's idle fraction of the step: (p-1)/(v·m+p-1) (v = 1: (p-1)/(m+p-1))."""
        p, m = self.pipeline, self.micro_batches
        return (p - 1) / (self.virtual * m + p - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "pipeline": self.pipeline,
                "micro_batches": self.micro_batches, "data": self.data,
                "bubble": self.bubble, "sequence_parallel": self.sequence_parallel,
                "virtual_stages": self.virtual, "schedule": self.schedule,
                "expert": self.expert}  # fmt: skip


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


_KV_CONFIG = ("num_key_value_heads", "num_kv_heads", "n_kv_heads", "n_head_kv")
_KV_MODULE = ("num_key_value_heads", "num_kv_heads", "n_kv_heads")


def kv_heads_of(model: Any) -> int | None:
    """The key/value heads of grouped-query or multi-query attention: a transformers config's
    ``num_key_value_heads`` (``num_kv_heads``, ...; ``multi_query``: 1), else the first
    module's; None where the model names none (every head has its own keys and values)."""
    config = getattr(model, "config", None)
    if getattr(config, "multi_query", None) is True and not getattr(
            config, "new_decoder_architecture", False):  # GPT-BigCode, Falcon-7B: one  # fmt: skip
        return 1
    for name in _KV_CONFIG:
        kv = getattr(config, name, None)
        if isinstance(kv, int) and not isinstance(kv, bool) and kv > 0:
            return kv
    for m in getattr(model, "modules", lambda: [])():
        for name in _KV_MODULE:
            kv = getattr(m, name, None)
            if isinstance(kv, int) and not isinstance(kv, bool) and kv > 0:
                return kv
    return None


def check_heads(tensor: int, heads: int | None, kv_heads: int | None = None) -> None:
    """An InputError unless the tensor parallel degree divides the attention heads and the
    key/value heads: Megatron-Core gives each device whole query groups (its
    ``num_query_groups_per_partition`` is ``divide(num_query_groups, t)``, which asserts) and
    does not replicate key/value heads in training."""
    if tensor < 2:
        return
    if heads is not None and heads % tensor:
        raise InputError(f"tensor parallel degree {tensor} does not divide the model's "
                         f"{heads} attention heads")  # fmt: skip
    if kv_heads is not None and kv_heads % tensor:
        raise InputError(f"tensor parallel degree {tensor} does not divide the model's "
                         f"{kv_heads} key/value heads (grouped-query attention: each device "
                         f"needs whole key/value heads; use a degree that divides {kv_heads})")  # fmt: skip


def layout(report: Report, heads: int | None, element_bytes: int,
           kv_heads: int | None = None, replicated: tuple[str, ...] = ()) -> Layout:  # fmt: skip
    """The layout from the report's tree (``replicated``: linears whole on each device)."""
    total = report.root.total_params().params
    moe = moe_layout(report)
    split = sum(n.own.params for n in report.modules() if n.type in SPLIT_TYPES)
    split -= sum(n for kind, n in moe.routers if kind in SPLIT_TYPES)  # replicated
    split -= sum(n.own.params for n in report.modules() if n.name in replicated)
    layers: list[Any] = []
    for node in report.modules():
        if node.type == "ModuleList":
            layers += node.children
    layer_params = layers[0].total_params().params if layers else 0
    shape = layers[0].output_shapes[0] if layers and layers[0].output_shapes else []
    boundary = prod(shape) * element_bytes if shape else 0
    sizes = tuple(x.total_params().params for x in layers)
    return Layout(total, split, len(layers), layer_params, boundary, heads, kv_heads, sizes,
                  rest_places(report, layers), tied_copy(report, layers), moe.expert,
                  moe.layers, layer_experts(report, layers))  # fmt: skip


def _last_forward(layers: list[Any]) -> int:
    """The last forward event of the layers (-1: none ran)."""
    ends = [rec.seq for x in layers for n in x.walk() for rec in n.ops
            if rec.phase == "forward" and rec.seq >= 0]  # fmt: skip
    return max(ends) if ends else -1


def tied_copy(report: Report, layers: list[Any]) -> int:
    """The parameters of the embedding weight a tied head uses: a ``Linear`` with no
    parameters of its own (the report counts a shared weight once, with the module that has
    it first) that runs after the last layer, its output's last dimension v, and an
    ``Embedding`` run before the first layer of v x h parameters (h: its output's last
    dimension); 0 where there is none."""
    if not layers:
        return 0
    last = _last_forward(layers)
    firsts = {id(n): _first_forward(n) for n in report.modules()}
    heads = [n for n in report.modules() if n.type == "Linear" and not n.own.params
             and n.output_shapes and (firsts[id(n)] or -1) > last >= 0]  # fmt: skip
    embeddings = [n for n in report.modules() if n.type == "Embedding" and n.own.params
                  and n.output_shapes and (firsts[id(n)] or 0) <= last]  # fmt: skip
    for head in heads:
        v = head.output_shapes[0][-1] if head.output_shapes[0] else 0
        for emb in embeddings:
            h = emb.output_shapes[0][-1] if emb.output_shapes[0] else 0
            if v and emb.own.params == v * h:
                return emb.own.params
    return 0


def _first_forward(node: Any) -> int | None:
    """The first forward event of ``node`` or its submodules (None: it ran none)."""
    seqs = [rec.seq for n in node.walk() for rec in n.ops
            if rec.phase == "forward" and rec.seq >= 0]  # fmt: skip
    return min(seqs) if seqs else None


def rest_places(report: Report, layers: list[Any]) -> tuple[int, int] | None:
    """(parameters outside ``layers`` whose module first runs before the last layer's last
    forward op, those whose module first runs after it): the first and the last pipeline
    stage's; a module that never ran counts with the first. None without layers."""
    if not layers:
        return None
    inside = {id(n) for x in layers for n in x.walk()}
    last = _last_forward(layers)
    before = after = 0
    for node in report.modules():
        if id(node) in inside or not node.own.params:
            continue
        first = _first_forward(node)
        if first is not None and first > last >= 0:
            after += node.own.params
        else:
            before += node.own.params
    return before, after


def check_plan(devices: int, tensor: int, pipeline: int, micro_batches: int,
               lay: Layout | None = None, *, sequence_parallel: bool = False,
               virtual: int = 1, schedule: str = "1f1b", expert: int = 1) -> ParallelPlan:  # fmt: skip
    """The plan, or one InputError saying why it cannot run."""
    for name, v in (("tensor parallel degree", tensor), ("pipeline stages", pipeline),
                    ("micro-batches", micro_batches), ("virtual stages", virtual),
                    ("expert parallel degree", expert)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a whole number >= 1 (got {v!r})")
    _check_schedule(tensor, pipeline, micro_batches, sequence_parallel, virtual, schedule)
    if lay is not None and virtual > 1 and lay.layers % (pipeline * virtual):
        raise InputError(f"{lay.layers} layers do not split into {pipeline} stages x "
                         f"{virtual} virtual stages = {pipeline * virtual} equal chunks")  # fmt: skip
    if devices % (tensor * pipeline):
        raise InputError(f"{devices} devices do not split into tensor {tensor} x pipeline "
                         f"{pipeline} = {tensor * pipeline} per replica")  # fmt: skip
    check_experts(expert, devices // (tensor * pipeline), None if lay is None else lay.moe)
    if lay is not None:
        check_heads(tensor, lay.heads, lay.kv_heads)
        if pipeline > 1 and lay.layers == 0:
            raise InputError("pipeline parallelism needs repeated layers (the children of an "
                             "nn.ModuleList); this model has none")  # fmt: skip
        if pipeline > lay.layers > 0:
            raise InputError(f"{pipeline} pipeline stages for {lay.layers} layers: at most one "
                             "stage per layer")  # fmt: skip
    return ParallelPlan(tensor, pipeline, micro_batches, devices // (tensor * pipeline),
                        bool(sequence_parallel), virtual, schedule, expert)  # fmt: skip


def _check_schedule(tensor: int, pipeline: int, micro_batches: int, sequence_parallel: bool,
                    virtual: int, schedule: str) -> None:  # fmt: skip
    """Sequence parallelism needs t > 1; interleaving needs p > 1, 1F1B and (Megatron-LM's
    check) micro-batches a multiple of p."""
    if schedule not in SCHEDULES:
        raise InputError(f"unknown pipeline schedule {schedule!r}; use one of "
                         f"{', '.join(SCHEDULES)}")  # fmt: skip
    if sequence_parallel and tensor < 2:
        raise InputError("sequence parallelism splits what tensor parallelism leaves whole: "
                         "it needs a tensor parallel degree > 1 (--tp)")  # fmt: skip
    if virtual > 1:
        if pipeline < 2:
            raise InputError(f"{virtual} virtual stages need a pipeline of 2 or more stages "
                             "(--pp)")  # fmt: skip
        if schedule != "1f1b":
            raise InputError("virtual stages interleave the 1F1B schedule, not GPipe")
        if micro_batches % pipeline:
            raise InputError(f"the interleaved schedule needs micro-batches a multiple of the "
                             f"{pipeline} pipeline stages (got {micro_batches})")  # fmt: skip


def stage_params(lay: Layout, plan: ParallelPlan) -> list[int]:
    """The parameters each pipeline stage holds: its own layers, cut in p·v chunks as
    ``activation_split.chunk_layers`` cuts them (chunk c on stage c mod p), the rest of the
    model by where it runs (``Layout.rest_places``: what runs before the first layer on the
    first stage, what runs after the last on the last stage; without places all on the
    first), and on the last stage the copy of a tied embedding (``Layout.tied``). One stage:
    the whole model."""
    p = plan.pipeline
    if p < 2:
        return [lay.params]
    if not lay.layer_sizes:  # a layout without each layer's size: every layer as the first
        rest = lay.params - lay.layers * lay.layer_params
        sizes = (lay.layer_params,) * lay.layers
    else:
        rest, sizes = lay.params - sum(lay.layer_sizes), lay.layer_sizes
    held = [0] * p
    last = 0 if lay.rest_places is None else min(lay.rest_places[1], rest)
    held[0] += rest - last
    held[-1] += last + lay.tied
    i = 0
    for c, n in enumerate(chunk_layers(len(sizes), p, plan.virtual)):
        held[c % p] += sum(sizes[i:i + n])
        i += n
    return held


def stage_share(lay: Layout, plan: ParallelPlan,
                stage: int | None = None) -> tuple[int, Fraction]:  # fmt: skip
    """(the parameters of stage ``stage`` (None: the stage holding the most), the expert ones
    among them: its layers' where each layer's are known, else the model's proportion)."""
    held = stage_params(lay, plan)
    s = held.index(max(held)) if stage is None else stage
    if plan.pipeline < 2 or not lay.expert:
        return held[s], Fraction(lay.expert if plan.pipeline < 2 else 0)
    if sum(lay.layer_experts) == lay.expert:
        return held[s], Fraction(stage_experts(lay.layer_experts, plan.pipeline, plan.virtual)[s])
    return held[s], Fraction(held[s] * lay.expert, lay.params)


def device_fraction(lay: Layout, plan: ParallelPlan, stage: int | None = None) -> Fraction:
    """The share of the model's parameters one device of pipeline stage ``stage`` holds (None:
    the stage holding the most, ``stage_params``): its expert layers' parameters / (t·e)
    (``stage_share``), of the rest the split modules' / t and the others whole (the split
    share of the stage's non-expert parameters: the model's)."""
    t = plan.tensor
    if not lay.params:
        return Fraction(1)
    mine, ex = stage_share(lay, plan, stage)
    rest = lay.params - lay.expert
    split = Fraction(lay.split, rest) if rest else Fraction(0)
    return ((mine - ex) * (split / t + 1 - split) + Fraction(ex, t * plan.expert)) / lay.params


def device_categories(categories: dict[str, int], lay: Layout, plan: ParallelPlan,
                      stage: int | None = None) -> dict[str, int]:  # fmt: skip
    """The model-state categories one device of the plan holds (before ZeRO): on pipeline
    stage ``stage``, or (None) on the stage holding the most parameters."""
    f = device_fraction(lay, plan, stage)
    return {k: ceil(v * f) if k in _STATES else v for k, v in categories.items()}


def split_collectives(lay: Layout, plan: ParallelPlan,
                      grad_bytes: int = 0) -> list[tuple[str, str, str, int, int, int]]:  # fmt: skip
    """The collectives the split adds, per device per step: (kind, what, phase, buffer bytes,
    per step, group size). Tensor parallel: 2 all-reduces of each of the stage's layers'
    outputs in the forward and 2 in the backward per micro-batch (sequence parallel: each a
    reduce-scatter and an all-gather, and 2 all-gathers more in the backward); pipeline: each
    boundary sends the activations forward and receives their gradients per micro-batch (v
    times with v virtual stages); with a tied embedding (``lay.tied``) the first and the last
    stage all-reduce its gradient once per step, each tensor slice its 1/t share at
    ``grad_bytes`` per element (``TIED``; Megatron-LM's embedding group: 2 devices)."""
    m, t, p, v = plan.micro_batches, plan.tensor, plan.pipeline, plan.virtual
    out = []
    if t > 1 and lay.layers:
        n = 2 * -(-lay.layers // p) * m  # 2 per layer of the stage per micro-batch
        b = lay.boundary_bytes  # the whole b x s x h output, summed over the t slices
        if plan.sequence_parallel:  # each all-reduce: a reduce-scatter and an all-gather
            out += [("all-gather", "activations", "forward", b, n, t),
                    ("reduce-scatter", "activations", "forward", b, n, t),
                    ("all-gather", "activation gradients", "backward", b, n, t),
                    ("reduce-scatter", "activation gradients", "backward", b, n, t),
                    ("all-gather", "activations again", "backward", b, n, t)]  # fmt: skip
        else:
            out += [("all-reduce", "activations", "forward", b, n, t),
                    ("all-reduce", "activation gradients", "backward", b, n, t)]  # fmt: skip
    if p > 1:
        b = lay.boundary_bytes // t  # each of the t slices sends its share
        out += [("send/recv", x, ph, b, v * m, 2) for x, ph in
                (("activations", "forward"), ("activation gradients", "backward"))]
        if lay.tied and grad_bytes:
            out.append(("all-reduce", TIED, "backward", -(-lay.tied // t) * grad_bytes, 1, 2))
    return out


__all__ = ["SPLIT_TYPES", "TIED", "Layout", "ParallelPlan", "check_heads", "check_plan",
           "device_categories", "device_fraction", "heads_of", "kv_heads_of", "layout",
           "rest_places", "split_collectives", "stage_params", "stage_share", "tied_copy"]  # fmt: skip
