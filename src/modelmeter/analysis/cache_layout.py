"""KV-cache layouts: the bytes a step moves with a dynamic, a static or a paged cache.

Every phase is traced with the model's own ``DynamicCache`` (the cache ``generate()`` makes).
Its layers append with ``torch.cat([cache, new], dim=-2)``: at context c each decode step
reads the c cached tokens and the new one and writes c+1 tokens, for the keys and for the
values of every layer, so the bytes written grow with the context. That is what eager
transformers runs (layout ``dynamic``).

A serving engine does not copy the cache. A *static* cache (transformers' ``StaticCache``,
preallocated to the longest sequence, what ``torch.compile`` and CUDA graphs need) writes the
new token with ``index_copy_``; a *paged* cache (vLLM's paged attention) writes it into a
block. Either writes the new token's keys and values once (reading them once) and reads the
cache once, in attention. :func:`served` rewrites a trace's cache appends to that: each
``cat`` run inside a cache layer's ``update`` (every output a KV tensor, see
``frontends.torch.kvcache``) keeps only the inputs that are not cache storage (the new
tokens) and writes their size. Attention, and every other op, is left as traced: its
MACs, FLOPs and bytes are the same in every layout (attention over the c+1 keys held).

What it does not model: a real ``StaticCache`` in transformers attends over its whole
``max_cache_len`` under a mask (more MACs than the c+1 keys a flash or paged kernel reads;
counted here as c+1, what the layout needs, not what that eager code runs); a paged cache's
last partly filled block and its allocator; the moment's copy a cat holds in the activation
peak (kept as traced).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelmeter.errors import InputError
from modelmeter.events import OpEvent, Trace

LAYOUTS = ("dynamic", "static", "paged")
DEFAULT = "paged"

_DESCRIBE = {
    "dynamic": "dynamic cache (transformers' DynamicCache as traced: each decode step's "
    "torch.cat copies every layer's cache, reading the c cached tokens and writing c+1, so "
    "the bytes written grow with the context)",
    "static": "static cache (StaticCache-like: each step writes the new token's keys and "
    "values in place and attention reads the c+1 cached tokens; the cat's copy of the "
    "traced DynamicCache is taken out; MACs are attention over the c+1 keys, not over a "
    "masked max_cache_len as transformers' eager StaticCache computes)",
    "paged": "paged cache (vLLM-like: each step writes the new token's keys and values "
    "into a block and attention reads the c+1 cached tokens; the cat's copy of the traced "
    "DynamicCache is taken out; blocks' padding not counted)",
}


def describe(layout: str) -> str:
    """One sentence on what a layout's bytes assume (for the result's notes)."""
    return f"KV bytes assume a {_DESCRIBE[layout]}"


def served(trace: Trace, layout: str) -> Trace:
    """``trace`` with its cache appends as ``layout`` writes them (``dynamic``: unchanged)."""
    if layout == "dynamic":
        return trace
    if layout not in LAYOUTS:
        raise ValueError(f"unknown cache layout {layout!r}")
    return replace(trace, events=[_in_place(ev) for ev in trace.events])


def is_append(ev: OpEvent) -> bool:
    """A cache layer's append: a cat whose every output is KV-cache storage."""
    outs = ev.call.outputs
    return ev.target.split(".")[0] == "cat" and bool(outs) and all(t.kv for t in outs)


def _in_place(ev: OpEvent) -> OpEvent:
    """A cache append as an in-place write of the new tokens: it reads the inputs that are
    not cache storage (the new keys or values) and writes as many tokens."""
    if not is_append(ev):
        return ev
    new = tuple(t for t in ev.call.inputs if not t.kv and t.numel)
    out = ev.call.outputs[0]
    dim = ev.call.arg("dim", 0)
    dim = dim % len(out.shape) if out.shape else 0
    length = sum(t.shape[dim] for t in new if len(t.shape) == len(out.shape))
    shape = tuple(length if i == dim else s for i, s in enumerate(out.shape))
    written = replace(out, shape=shape, distinct=None)
    args = {**ev.call.args, "tensors": new} if "tensors" in ev.call.args else ev.call.args
    call = replace(ev.call, args=args, inputs=new, outputs=(written,))
    return replace(ev, call=call, work=None)


def check(layout: Any) -> str:
    """The layout by name, or InputError naming the choices."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown cache layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    return str(layout)


__all__ = ["LAYOUTS", "DEFAULT", "describe", "served", "is_append", "check"]
