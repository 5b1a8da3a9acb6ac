"""Mixture-of-experts layers read off a Report: total and active parameters per token, and
the expected number of distinct experts a batch of tokens touches.

**Which modules are expert layers.** A module whose own ops include a grouped matmul
(``aten._grouped_mm``) of the 2D x 3D form, rows (token-expert pairs) split into groups over
a stack of G expert weights (G, K, N): transformers' experts modules (``MixtralExperts``,
``Qwen2MoeExperts``, ``Qwen3MoeExperts``, ``DeepseekV3Experts`` ...) call it for their
up/gate and down projections. Its parameters are the stacked weights of all experts.

- **E**, the number of experts: G, the first dimension of the grouped matmul's weights.
- **k**, the experts per token: the grouped matmul's rows S (one per token-expert pair)
  over the tokens T the module returns (its output is one row of the hidden size per token):
  k = S / T.
- A **shared expert** (Qwen2-MoE's ``shared_expert``, DeepSeek's ``shared_experts``) and the
  router are ordinary modules outside the experts module: they count as always active, like
  attention, norms, embeddings and the LM head.

**Active parameters per token** = all parameters - sum over expert layers of
(E - k)/E x that layer's expert parameters: every token uses every non-expert parameter and
the k experts its router picks in each layer (each expert holds 1/E of the layer's expert
parameters). Models whose experts are a loop over per-expert modules (no grouped matmul) are
not recognised: their active parameters are reported as the total.

**Routing assumption** (:data:`ROUTING`): every token goes to k distinct experts of each
layer, chosen uniformly and independently of the other tokens; the counted MACs (S rows per
layer) do not depend on which experts are chosen. The weight bytes a step reads do: a batch
of T tokens touches :func:`expected_distinct_experts` of them on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelmeter.report import ModuleNode, Report

ROUTING = (
    "every token is routed to its top-k experts in each MoE layer; weights read by a batch "
    "of T tokens: E*(1-((E-k)/E)**T) distinct experts expected (uniform routing)"
)
GROUPED_MM = "aten._grouped_mm"


@dataclass(frozen=True, slots=True)
class ExpertLayer:
    """One experts module: its name, E experts, k per token, and all experts' parameters
    (count and bytes)."""

    name: str
    experts: int
    top_k: int
    params: int
    param_bytes: int

    @property
    def active_params(self) -> int:
        """Parameters one token uses here: k experts of E."""
        return self.params * self.top_k // self.experts

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.name,
            "experts": self.experts,
            "top_k": self.top_k,
            "params": self.params,
            "active_params": self.active_params,
        }


def _layer(node: ModuleNode) -> ExpertLayer | None:
    """The expert layer ``node`` is, or None (see the module docstring for the rule)."""
    ops = [o for o in node.ops if o.op == GROUPED_MM and len(o.shapes) >= 2]
    ops = [o for o in ops if len(o.shapes[0]) == 2 and len(o.shapes[1]) == 3]
    if not ops or not node.output_shapes or not node.output_shapes[0]:
        return None
    rows, experts = ops[0].shapes[0][0], ops[0].shapes[1][0]
    tokens = math.prod(node.output_shapes[0][:-1])
    if tokens <= 0 or rows % tokens or experts <= 0:
        return None
    top_k = rows // tokens
    stats = node.total_params()
    if not 0 < top_k <= experts or stats.params <= 0:
        return None
    return ExpertLayer(node.name, experts, top_k, stats.params, stats.param_bytes)


def expert_layers(report: Report) -> list[ExpertLayer]:
    """The Report's expert layers in module order (empty for a dense model)."""
    return [layer for node in report.modules() if (layer := _layer(node)) is not None]


def active_parameters(report: Report) -> int:
    """Parameters a single token uses: every non-expert parameter plus k of E experts' in
    each expert layer (shared experts are non-expert: always active). A dense model: all."""
    total = report.total().params
    return total - sum(layer.params - layer.active_params for layer in expert_layers(report))


def parameters_touched(report: Report, tokens: int) -> float:
    """Expected parameters a step over ``tokens`` tokens reads (uniform routing): every
    non-expert parameter plus, in each expert layer, its expected distinct experts' share,
    params * expected_distinct_experts(E, k, T) / E. One token: :func:`active_parameters`;
    many tokens: every parameter."""
    layers = expert_layers(report)
    dense = report.total().params - sum(layer.params for layer in layers)
    return dense + sum(
        layer.params * expected_distinct_experts(layer.experts, layer.top_k, tokens)
        / layer.experts
        for layer in layers
    )


def expected_distinct_experts(num_experts: int, top_k: int, tokens: int) -> float:
    """Expected number of distinct experts of one layer that ``tokens`` tokens touch, each
    routed to ``top_k`` distinct experts of ``num_experts`` uniformly at random:
    E * (1 - ((E - k)/E)**T) (an expert is missed by one token with probability (E-k)/E)."""
    if num_experts <= 0 or not 0 <= top_k <= num_experts or tokens < 0:
        raise ValueError(
            f"need 0 <= top_k <= num_experts and tokens >= 0 "
            f"(got E={num_experts}, k={top_k}, T={tokens})"
        )
    return num_experts * (1 - ((num_experts - top_k) / num_experts) ** tokens)


@dataclass(frozen=True, slots=True)
class ExpertsSummary:
    """Total and active parameters of a mixture-of-experts model, with its layers."""

    params: int
    active_params: int
    layers: tuple[ExpertLayer, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "active_params": self.active_params,
            "routing": ROUTING,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def experts_summary(report: Report) -> ExpertsSummary | None:
    """The summary of a mixture-of-experts Report; None when it has no expert layer."""
    layers = expert_layers(report)
    if not layers:
        return None
    return ExpertsSummary(report.total().params, active_parameters(report), tuple(layers))


__all__ = [
    "ROUTING",
    "ExpertLayer",
    "ExpertsSummary",
    "active_parameters",
    "expected_distinct_experts",
    "expert_layers",
    "experts_summary",
    "parameters_touched",
]
