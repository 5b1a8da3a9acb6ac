"""KV-cache layouts: which cache object a phase is traced with, the bytes a step moves, and
the memory the cache takes, for a dynamic, a static, an in-place or a paged cache.

- ``dynamic``: transformers' ``DynamicCache`` as traced (what eager ``generate()`` makes). Its
  layers append with ``torch.cat([cache, new], dim=-2)``: at context c each decode step
  reads the c cached tokens and the new one and writes c+1 tokens, for the keys and for the
  values of every layer, so the bytes written grow with the context. Memory: the tokens held.
- ``static``: transformers' own ``StaticCache(max_cache_len=M)``, traced as such (M = P + G
  unless given). Its buffers hold M tokens per layer from the prefill on (``min(window, M)``
  for a sliding-window layer); ``update`` writes the new token in place (``index_copy_``:
  one token written, the cache not read by the write) and attention reads all M slots under
  a mask. A decode step's cost therefore does not grow with the context: at every context
  it is the cost at M (what eager transformers, and ``torch.compile`` of it, computes).
  Memory: M tokens from the start.
- ``inplace``: a preallocated cache written in place whose attention reads only the c+1
  filled tokens (a flash-decoding kernel over a contiguous cache, as llama.cpp or a
  non-paged serving engine run). Derived from the DynamicCache trace by :func:`served`.
  Memory: M tokens, as ``static``.
- ``paged`` (the default): vLLM's paged cache, the new token written into a block, the
  c+1 filled tokens read in attention; derived by :func:`served` as ``inplace``. Memory:
  blocks of B tokens (``block_size``, default 16): ceil(T/B) x B tokens per sequence, the
  last block's unused slots counted as padding (a sliding-window layer: the blocks covering
  the tokens it keeps). The decode step reads the filled tokens only, not the padding.

:func:`served` rewrites a DynamicCache trace's cache appends to an in-place write: each
``cat`` run inside a cache layer's ``update`` (every output a KV tensor, see
``frontends.torch.kvcache``) keeps only the inputs that are not cache storage (the new
tokens) and writes their size. Attention, and every other op, is left as traced: its MACs,
FLOPs and bytes are those of the c+1 keys held.

A paged cache's sliding-window layer holds the blocks covering the tokens it keeps
(:mod:`modelmeter.analysis.paged_blocks`). Not modelled: a paged cache's allocator reserve
and fragmentation, and the moment's copy a cat holds in the activation peak (kept as
traced).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from modelmeter.errors import InputError
from modelmeter.events import OpEvent, Trace

LAYOUTS = ("dynamic", "static", "inplace", "paged")
DEFAULT = "paged"
BLOCK_SIZE = 16  # vLLM's default block of tokens

_DESCRIBE = {
    "dynamic": "dynamic cache (transformers' DynamicCache as traced: each decode step's "
    "torch.cat copies every layer's cache, reading the c cached tokens and writing c+1, so "
    "the bytes written grow with the context; memory: the tokens held)",
    "static": "static cache (transformers' StaticCache of {m} tokens, traced: the new token "
    "written in place by index_copy_, attention over all {m} slots under a mask, so a decode "
    "step costs the same at every context; memory: {m} tokens per sequence from the start)",
    "inplace": "preallocated in-place cache ({m} tokens, the new token written in place, "
    "attention reading only the c+1 filled tokens; the cat's copy of the traced "
    "DynamicCache is taken out; memory: {m} tokens per sequence)",
    "paged": "paged cache (vLLM-like: the new token's keys and values written into a block "
    "of {b} tokens, attention reading the c+1 filled tokens, not the padding; the cat's "
    "copy of the traced DynamicCache is taken out; memory: ceil(tokens/{b}) x {b} tokens "
    "per sequence, a sliding-window layer the blocks covering its window)",
}


@dataclass(frozen=True)
class CacheSetup:
    """A layout with its sizes: ``block`` tokens per paged block (1: not paged),
    ``max_cache_len`` the tokens a static or in-place cache is preallocated to (0: none)."""

    layout: str = DEFAULT
    block: int = 1
    max_cache_len: int = 0

    @property
    def kind(self) -> str:
        """The cache object the phases are traced with (``kvcache.CACHE_KINDS``)."""
        return "static" if self.layout == "static" else "dynamic"

    def allocated(self, tokens: int) -> int:
        """Tokens a sequence's cache takes in memory when it holds ``tokens``."""
        return max(math.ceil(tokens / self.block) * self.block, self.max_cache_len)

    def breaks(self, windows: tuple[int, ...]) -> list[int]:
        """Contexts where a decode step's ops may change: a DynamicCache's window layer at
        w-1 (full) and w+1; a StaticCache's at w (it starts rolling)."""
        near = (-1, 0, 1) if self.kind == "static" else (-1, 1)
        return sorted({w + d for w in windows for d in near})

    def describe(self) -> str:
        return _DESCRIBE[self.layout].format(m=self.max_cache_len, b=self.block)

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "block_size": self.block if self.layout == "paged"
                else None, "max_cache_len": self.max_cache_len or None}  # fmt: skip


def setup(layout: Any, tokens: int, block_size: Any = None, max_cache_len: Any = None) -> CacheSetup:
    """The layout and its sizes for a generation of ``tokens`` tokens (prompt + new); an
    InputError for a size that is not a whole number, too small, or given to a layout
    without it."""
    layout = check(layout)
    if block_size is not None:
        if layout != "paged":
            raise InputError(f"a block size applies to the paged cache only (cache {layout})")
        _whole("block size", block_size, 1)
    if max_cache_len is not None:
        if layout not in ("static", "inplace"):
            raise InputError("max_cache_len applies to a static or inplace cache only "
                             f"(cache {layout})")  # fmt: skip
        _whole("max_cache_len", max_cache_len, tokens)
    if layout == "paged":
        return CacheSetup(layout, block_size or BLOCK_SIZE)
    if layout in ("static", "inplace"):
        return CacheSetup(layout, 1, max_cache_len or tokens)
    return CacheSetup(layout)


def _whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        why = ", prompt + new," if least > 1 else ""
        raise InputError(f"{name} must be a whole number >= {least}{why} (got {value!r})")


def describe(layout: str | CacheSetup) -> str:
    """One sentence on what a layout's bytes assume (for the result's notes)."""
    if isinstance(layout, str):
        layout = setup(layout, 1)
    return f"KV bytes assume a {layout.describe()}"


def served(trace: Trace, layout: str) -> Trace:
    """``trace`` with its cache appends as ``layout`` writes them (``dynamic``, and
    ``static``, traced with its own StaticCache: unchanged)."""
    if layout in ("dynamic", "static"):
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


__all__ = ["LAYOUTS", "DEFAULT", "BLOCK_SIZE", "CacheSetup", "setup", "describe", "served",
           "is_append", "check"]
