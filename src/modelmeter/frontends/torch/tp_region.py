"""Which storages of a traced forward lie inside the tensor-parallel region (Megatron-LM's
column-parallel -> row-parallel span), followed by data flow while the forward runs.

Megatron splits each pair of linear layers in two: the first column-wise (its output is 1/t of
the features on each device: attention's QKV, the MLP's first linear(s)), the second row-wise
(its partial outputs are all-reduced back to the full hidden size: attention's output
projection, the MLP's last linear). What lies between them — Q, K, V, the scores, softmax and
dropout, the context, the MLP's inner activations — exists on each device only for its 1/t
of the heads or features; what lies outside — the layer's input and output, the residuals,
the norms and their statistics, the dropouts after the row-parallel linears — is full size on
every device.

The rule, applied op by op as the forward runs: a matrix product with a parameter operand
(``mm``, ``addmm``, ``bmm``, ...: a linear layer, whatever module or function called it)
flips the region: full input -> split output (column-parallel), split input -> full output
(row-parallel, after its all-reduce). Every other op's outputs are split when any of its
non-parameter tensor inputs is (views and in-place ops included: a dropout mask made by
``empty_like(scores).bernoulli_()`` is split like the scores). The embedding's lookup reads
token ids: full (Megatron's vocabulary-parallel embedding all-reduces its output); the logits
of a language-model head are split (its vocabulary-parallel output). Attention written as
functions in a parent's forward, or run as one fused kernel, is classified by the same flow,
not by the module that ran it.

**Mixture-of-experts layers** (Megatron-Core's MoE under tensor parallelism, expert tensor
parallel degree t): a grouped matmul of the experts' stacked weights (``_grouped_mm``, the 2D x
3D form transformers' experts modules run) is a product like ``mm``: the experts' gate/up
projection is column-parallel (the permuted tokens, whole, in; 1/t of the intermediate
features out), their down projection row-parallel (split in, whole out). The router (the gate
of E x h, and Qwen2-MoE's shared-expert gate of 1 x h) is replicated, as Megatron-Core keeps
it: a product with a ``replicated`` weight does not flip the region, so the router's logits,
probabilities and the routing weights stay whole, and so does the token permutation; a shared
expert is an ordinary MLP (its column/row pair flips as any). ``router_modules`` names the
replicated modules: the direct children of a sparse-MoE block (the parent of a module holding
two or more 3-D stacked expert weights with the same number of experts) that hold parameters
of their own and no submodule with any.
"""

from __future__ import annotations

from typing import Any

import torch

from modelmeter.frontends.torch.tracer import _tensors, storage_id
from modelmeter.ops.feature_norm import feature_rows, normalises_features

# products whose parameter operand makes them a linear layer
_PRODUCTS = frozenset({"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "mv",
                       "addmv", "_scaled_mm", "_grouped_mm"})  # fmt: skip


class RegionTracker:
    """Storage ids inside the tensor-parallel region (see the module docstring)."""

    def __init__(self, weights: set[int], replicated: set[int] | None = None) -> None:
        self.weights = weights  # parameter storages (never in the region)
        self.replicated = replicated or set()  # weights of replicated linears (MoE routers)
        self.split: set[int] = set()
        self.normalised: set[int] = set()  # weights of linears found replicated (latents)
        # storage -> (weight, rows) of a column product's output features (or a slice)
        self._features: dict[int, tuple[int, int]] = {}
        self._origin: dict[int, int] = {}  # split storage -> the column product's weight

    def see(self, target: str, args: tuple, kwargs: dict, out: Any) -> None:
        """Classify the outputs of one op from its inputs."""
        self._normalised(target, args, kwargs)
        inside = weighted = False
        weight = origin = None
        for t in _tensors((args, kwargs)):
            sid = storage_id(t)
            if sid in self.weights:
                if sid not in self.replicated:
                    weighted, weight = True, sid
            elif sid in self.split:
                inside, origin = True, self._origin.get(sid)
        column = weighted and target in _PRODUCTS and not inside
        if weighted and target in _PRODUCTS:
            inside = not inside  # a linear layer: column- or row-parallel
        # a product's output is new features (its own, for a column one); other ops carry them
        feature = None if target in _PRODUCTS else self._carried(args, kwargs)
        for t in _tensors(out):
            if isinstance(t, torch.Tensor):
                sid = storage_id(t)
                if inside:
                    self.split.add(sid)
                    self._origin[sid] = weight if column else origin
                else:
                    self.split.discard(sid)
                rows = feature_rows(t.shape)
                if column and weight is not None:
                    self._features[sid] = (weight, rows)
                elif feature is not None and feature[1] == rows:
                    self._features[sid] = feature
                else:
                    self._features.pop(sid, None)

    def _carried(self, args: tuple, kwargs: dict) -> tuple[int, int] | None:
        """The (weight, rows) of a column product's features per row, when every input (the
        weights and 0-d scalars apart) holds them: an op mixing in another tensor (a
        residual add) ends the follow."""
        found = set()
        for t in _tensors((args, kwargs)):
            sid = storage_id(t)
            if sid in self.weights or not isinstance(t, torch.Tensor) or t.dim() == 0:
                continue
            f = self._features.get(sid)
            if f is None or feature_rows(t.shape) != f[1]:
                return None
            found.add(f)
        return found.pop() if len(found) == 1 else None

    def _normalised(self, target: str, args: tuple, kwargs: dict) -> None:
        """A norm over the features of a column product's output: that linear is
        replicated (its output whole; the next linear starts the column/row pair)."""
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if first is None:
            return
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if not normalises_features(target, dims, first.dim()):
            return
        f = self._features.get(storage_id(first))
        if f is None or feature_rows(first.shape) != f[1]:
            return
        weight = f[0]
        self.normalised.add(weight)
        self.replicated.add(weight)
        for sid in [s for s, w in self._origin.items() if w == weight]:
            self.split.discard(sid)
            del self._origin[sid]


def _is_experts(module: torch.nn.Module) -> bool:
    """A module holding stacked expert weights: two or more own parameters of 3 dimensions
    with the same first (the experts), as gate/up and down are; not a convolution (whose
    weights are 3-D too), nor a module with one 3-D table (a ViT's position embedding)."""
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        return False
    firsts = [p.shape[0] for p in module.parameters(recurse=False) if p.dim() == 3]
    return len(firsts) >= 2 and len(set(firsts)) == 1


def router_modules(model: torch.nn.Module) -> set[str]:
    """The names of the modules a tensor-parallel MoE layer replicates (the routers; see the
    module docstring)."""
    out = set()
    for name, block in model.named_modules():
        children = list(block.named_children())
        if not any(_is_experts(c) for _, c in children):
            continue
        for child_name, child in children:
            own = any(True for _ in child.parameters(recurse=False))
            deeper = any(any(True for _ in g.parameters()) for g in child.children())
            if own and not deeper and not _is_experts(child):
                out.add(f"{name}.{child_name}" if name else child_name)
    return out


__all__ = ["RegionTracker", "router_modules"]
