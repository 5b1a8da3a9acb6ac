"""What a tensor- or expert-parallel plan needs of a mixture-of-experts model, read off its
Report: the parameters of its expert layers (``experts.expert_layers``: the modules whose ops
include the 2D x 3D grouped matmul, holding every expert's stacked weights), each layer's
experts E and experts per token k, and its routers.

**Routers** are the direct children of a sparse-MoE block (the parent of an expert layer) that
hold parameters of their own and no submodule with any: Mixtral's, Qwen's and DeepSeek's
``gate`` (E x h), Qwen2-MoE's ``shared_expert_gate`` (1 x h). Megatron-Core replicates them on
every tensor-parallel device, so a router that is an ``nn.Linear`` is taken out of the split
weight matrices. A shared expert (Qwen2-MoE's ``shared_expert``, DeepSeek's
``shared_experts``) has linear submodules: an ordinary MLP, split as any.
``frontends/torch/tp_region.router_modules`` applies the same rule to the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelmeter.analysis.activation_split import chunk_layers
from modelmeter.analysis.experts import expert_layers
from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.report import ModuleNode, Report


@dataclass(frozen=True, slots=True)
class MoeLayout:
    """The expert layers' parameters (all experts), each layer's (E, k) in model order, and
    the routers (type, own parameters)."""

    expert: int = 0
    layers: tuple[tuple[int, int], ...] = ()
    routers: tuple[tuple[str, int], ...] = ()

    @property
    def top_k(self) -> int:
        """The experts per token of the first expert layer (0: a dense model)."""
        return self.layers[0][1] if self.layers else 0


def _has_params(node: ModuleNode) -> bool:
    return node.total_params().params > 0


def moe_layout(report: Report) -> MoeLayout:
    """The model's expert layers and routers (empty for a dense model)."""
    layers = expert_layers(report)
    if not layers:
        return MoeLayout()
    names = {x.name for x in layers}
    routers = []
    for node in report.modules():
        if not any(c.name in names for c in node.children):
            continue
        for child in node.children:
            if child.name in names or not child.own.params:
                continue
            if not any(_has_params(g) for g in child.children):
                routers.append((child.type, child.own.params))
    return MoeLayout(sum(x.params for x in layers),
                     tuple((x.experts, x.top_k) for x in layers), tuple(routers))  # fmt: skip


def layer_experts(report: Report, layers: list[ModuleNode]) -> tuple[int, ...]:
    """Each of ``layers``' (the repeated layers, model order) expert parameters: those of the
    expert layers inside it (0: a dense layer, DeepSeek's first ones); () for a dense model."""
    ex = expert_layers(report)
    if not ex:
        return ()
    return tuple(sum(x.params for x in ex if x.name.startswith(f"{n.name}.")) for n in layers)


def stage_experts(per_layer: tuple[int, ...], pipeline: int, virtual: int) -> list[int]:
    """The expert parameters each of the ``pipeline`` stages holds, the layers cut in
    pipeline·virtual chunks as ``activation_split.chunk_layers`` cuts them (chunk c on stage
    c mod pipeline)."""
    held, i = [0] * pipeline, 0
    for c, n in enumerate(chunk_layers(len(per_layer), pipeline, virtual)):
        held[c % pipeline] += sum(per_layer[i:i + n])
        i += n
    return held


def check_experts(expert: int, replicas: int,
                  moe: tuple[tuple[int, int], ...] | None) -> None:  # fmt: skip
    """An InputError unless expert parallelism of degree ``expert`` fits: it divides the
    data-parallel ``replicas`` (each expert group is ``expert`` of them) and, once the model is
    known (``moe``: each expert layer's (E, k); None: not yet), the model has expert layers
    and it divides each one's experts."""
    if expert < 2:
        return
    if replicas % expert:
        raise InputError(f"expert parallel degree {expert} does not divide the {replicas} "
                         "data-parallel replicas (devices / (tensor x pipeline)): the experts "
                         f"are spread over groups of {expert} replicas")  # fmt: skip
    if moe is None:
        return
    if not moe:
        raise InputError("expert parallelism (--ep) needs a mixture-of-experts model: this "
                         "one has no expert layer (a grouped matmul over stacked expert "
                         "weights)")  # fmt: skip
    for experts, _ in moe:
        if experts % expert:
            raise InputError(f"expert parallel degree {expert} does not divide the model's "
                             f"{experts} experts per layer")  # fmt: skip


__all__ = ["MoeLayout", "check_experts", "layer_experts", "moe_layout", "stage_experts"]
