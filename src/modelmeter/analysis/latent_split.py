"""Which linears tensor-parallel serving replicates because a norm follows them: the rule of
``frontends/torch/tp_region.py`` (training's region, followed live) replayed on a generation's
trace events.

A column-parallel linear leaves each device 1/T of its output features. A norm over those
features (a layer or RMS norm, or the mean of their squares a hand-written RMSNorm takes,
``ops/feature_norm.py``) needs all of them: the split would need a gather before it. So
such a linear is replicated, its output whole on every device, and the next linear starts a
new column/row pair. This is multi-head latent attention (DeepSeek-V2/V3): ``q_a_proj``
(hidden -> q_lora_rank) feeds ``q_a_layernorm`` and ``kv_a_proj_with_mqa`` (hidden ->
kv_lora_rank + the rotary key) feeds ``kv_a_layernorm``; vLLM builds both as
``ReplicatedLinear`` and Megatron-Core's MLA keeps its down-projections whole on each
tensor-parallel rank, splitting ``q_b_proj`` / ``kv_b_proj`` by heads (column) and
``o_proj`` by rows. A dense model has no such linear (its norms take the residual stream,
whole; Qwen3's per-head q/k norms take the heads of a split output, not its features), so
its split is unchanged.

"Its features" is followed by storage: a column product's output, the same storage seen
through views (a split of the last axis included), and what elementwise ops make of it
alone, while the tensor keeps as many rows (tokens) as the product's output had; reshaping
the features into heads changes the rows and ends it, and so does an op that mixes in
another tensor (a residual add: ``x + Linear(x)`` then a norm stays a column-parallel
linear, as before).
"""

from __future__ import annotations

from typing import Any

from modelmeter.analysis.serving_parallel import _PRODUCTS, event_kinds
from modelmeter.ops.feature_norm import feature_rows, normalises_features


def _layer_key(scope: str) -> str:
    """The module path up to its first numbered part (``model.layers.3``), else its first
    part: the layer whose first row-parallel product ends the column products a pass of
    :func:`settle` trusts."""
    parts = scope.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


def _name(target: str) -> str:
    return target.split(".")[-1] if "." in target else target


def normalised_columns(events: list[Any], kinds: list[str]) -> set[str]:
    """The scopes of the column-parallel products (``kinds``: ``event_kinds``') whose output
    features a norm takes (the module docstring)."""
    features: dict[int, tuple[str, int]] = {}  # storage -> (product's scope, rows)
    found: set[str] = set()
    closed: set[str] = set()  # the layers past their first row-parallel product
    for ev, kind in zip(events, kinds, strict=True):
        name = _name(ev.target)
        if kind == "row":
            closed.add(_layer_key(ev.scope))
        ins = [t for t in ev.call.inputs if not t.weight and t.shape]
        held = [features[t.sid] for t in ins
                if t.sid in features and feature_rows(t.shape) == features[t.sid][1]]  # fmt: skip
        if ins and ins[0].sid in features and held and \
                normalises_features(name, ev.call.args.get("dim"), len(ins[0].shape)):
            found.add(features[ins[0].sid][0])
        # carried only when every input holds the same features (a residual add ends it)
        alone = len(held) == len(ins) and len(set(held)) == 1
        carried = held[0] if alone and name not in _PRODUCTS else None
        for t in ev.call.outputs:
            if kind in ("column", "kv-column") and _layer_key(ev.scope) not in closed:
                features[t.sid] = (ev.scope, feature_rows(t.shape))
            elif carried is not None and t.shape and feature_rows(t.shape) == carried[1]:
                features[t.sid] = carried
            else:
                features.pop(t.sid, None)
    return found


def settle(events: list[Any], names: set[str], kv: set[str] = frozenset(),  # type: ignore[assignment]
           cache_split: bool = True) -> tuple[set[str], list[str]]:  # fmt: skip
    """The split modules less the replicated linears, and each event's kind under them:
    ``event_kinds`` replayed until no column-parallel product's features meet a norm. Each
    pass takes only the products before their layer's first row-parallel one: what follows
    was classified on a region the replicated linears found change (a wrongly split
    down-projection makes its up-projection row-parallel and the output projection column),
    so a layer with two such linears settles in three passes."""
    names = set(names)
    while True:
        kinds = event_kinds(events, names, kv, cache_split)
        found = normalised_columns(events, kinds) & names
        if not found:
            return names, kinds
        names -= found


__all__ = ["normalised_columns", "settle"]
