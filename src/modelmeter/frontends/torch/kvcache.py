"""The phases of generation traced from a transformers model with its own cache object.

*Prefill*: the model runs ``tokens`` prompt tokens per sequence with an empty cache of the
kind ``generate()`` makes (``DynamicCache(config=...)`` in transformers 5), writing it; or,
with ``kind="static"``, transformers' own ``StaticCache(config=..., max_cache_len=M)``:
buffers of M tokens per layer (``min(window, M)`` for a sliding-window layer) that each
``update`` writes in place with ``index_copy_``, and that attention reads whole, masked.
*Decode*: one new token per sequence runs against a cache already holding ``context``
tokens. That cache is built before the trace by the cache's own ``update`` fed meta tensors
of the shapes the traced prefill left in each layer (batch, key/value heads, head size and
dtype as the model made them; only the sequence length changes), so GQA/MQA, sliding
windows (the cache layer keeps what it keeps) and layers that differ come from the model,
not from its config.

Cache tensors are marked while a trace runs: each layer's ``update`` is wrapped on the
cache object (ours, never the user's model); what it outputs is cache storage (the
tracer's ``writing_kv``), and the storages it holds or returns are listed in the tracer's
``kv`` set until they die, so reads of them carry ``TensorMeta.kv``. Cache storages are
taken out of the live activation bytes once stored (the KV cache is counted apart), so a
phase's peak activation is what else is live, plus at most the one copy a
``DynamicCache``'s ``torch.cat`` makes while it appends to a layer. Only floating-point
outputs of ``update`` are cache storage: a ``StaticCache``'s positions (``arange``) and its
length counter (``add_``) are integer bookkeeping, not cache.
"""

from __future__ import annotations

import inspect
import math
import weakref
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

from modelmeter.errors import InputError, ModelRunError
from modelmeter.events import Trace
from modelmeter.frontends.torch.dtypes import mixed_dtypes
from modelmeter.frontends.torch.inputs import InputSpecs, Shaped
from modelmeter.frontends.torch.tracer import OpTracer, dtype_name, storage_id


@dataclass(frozen=True)
class LayerCache:
    """What one cache layer holds: key and value shapes and their element size."""

    kind: str
    key_shape: tuple[int, ...]
    value_shape: tuple[int, ...]
    dtype: str
    window: int | None = None  # a sliding-window layer's window

    def nbytes(self, kv: Any = None) -> int:
        """Bytes of the keys and values it holds (``kv``: a KV-cache format, per head
        vector of the last dimension; None: its dtype)."""
        shapes = (self.key_shape, self.value_shape)
        if kv is not None:
            return sum(kv.nbytes(math.prod(s), s[-1]) for s in shapes)
        return sum(math.prod(s) for s in shapes) * getattr(torch, self.dtype).itemsize


@dataclass
class PhaseTrace:
    """A traced phase and the cache it left (one :class:`LayerCache` per layer)."""

    trace: Trace
    layers: tuple[LayerCache, ...]


def cache_argument(model: Any) -> str:
    """The name the model's forward takes its cache by (``cache`` in transformers 5.2x,
    ``past_key_values`` before); InputError for a model that takes none."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        params = {}
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise InputError(f"{type(model).__name__} takes no KV cache: generation needs a decoder "
                     "language model with cache support")  # fmt: skip


CACHE_KINDS = ("dynamic", "static")


def new_cache(model: Any, kind: str = "dynamic", max_cache_len: int | None = None) -> Any:
    """An empty cache of the kind ``generate()`` makes for this model (``dynamic``), or
    transformers' ``StaticCache`` of ``max_cache_len`` tokens (``static``)."""
    from transformers import DynamicCache, StaticCache

    config = getattr(model, "config", None)
    can = getattr(model, "can_generate", None)
    if config is None or getattr(config, "is_encoder_decoder", False) or not (
        callable(can) and can()
    ):
        raise InputError(f"{type(model).__name__} is not a decoder language model that "
                         "generates: generation needs one (e.g. a ...ForCausalLM)")  # fmt: skip
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    if callable(supports) and not supports():
        raise InputError(f"{type(model).__name__} does not use a DynamicCache")
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    if kind == "static":
        if not isinstance(max_cache_len, int) or max_cache_len < 1:
            raise InputError(f"a static cache needs max_cache_len >= 1 (got {max_cache_len!r})")
        try:
            return StaticCache(config=text, max_cache_len=max_cache_len)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise InputError(f"{type(model).__name__} has no StaticCache: {e}") from None
    if kind != "dynamic":
        raise InputError(f"unknown cache kind {kind!r}; use one of {', '.join(CACHE_KINDS)}")
    return DynamicCache(config=text)


class CacheWatch:
    """Marks a cache's storages in the running tracer (see the module docstring)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.sids: set[int] = set()
        self._refs: dict[int, int] = {}
        self._watch: dict[int, tuple[weakref.ref, int]] = {}
        for layer in cache.layers:
            layer.update = self._wrapped(layer, layer.update)

    def _wrapped(self, layer: Any, update: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracer = _tracer()
            if tracer is None:
                out = update(*args, **kwargs)
            else:
                tracer.kv = self.sids  # the tracer reads the live set
                tracer.writing_kv = True
                first = len(tracer.events)
                try:
                    out = update(*args, **kwargs)
                finally:
                    tracer.writing_kv = False
                _retag(tracer.events, first)
            for t in (*out, layer.keys, layer.values):
                self.mark(t, tracer)
            return out

        return wrapper

    def mark(self, t: Any, tracer: OpTracer | None) -> None:
        if not isinstance(t, torch.Tensor):
            return
        sid = storage_id(t)
        if tracer is not None:  # stored: the KV cache is counted apart from activations
            lt = tracer.lifetimes
            size = lt.size.get(sid)
            if size:
                lt.live -= size
                lt.size[sid] = 0
        self.sids.add(sid)
        self._refs[sid] = self._refs.get(sid, 0) + 1
        ref = weakref.ref(t, self._died)
        self._watch[id(ref)] = (ref, sid)

    def _died(self, ref: weakref.ref) -> None:
        entry = self._watch.pop(id(ref), None)
        if entry is None:
            return
        sid = entry[1]
        n = self._refs.get(sid, 0) - 1
        if n > 0:
            self._refs[sid] = n
        else:  # the storage may be reused by another tensor from now on
            self._refs.pop(sid, None)
            self.sids.discard(sid)

    def layers(self) -> tuple[LayerCache, ...]:
        out = []
        for layer in self.cache.layers:
            keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
            if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
                raise InputError(f"cannot read the cache layer {type(layer).__name__}: "
                                 "generation needs key/value cache layers")  # fmt: skip
            window = None
            if layer.is_sliding:  # a StaticSlidingWindowLayer keeps min(window, max) only
                window = getattr(layer, "sliding_window", None) or layer.max_cache_len
            out.append(
                LayerCache(type(layer).__name__, tuple(keys.shape), tuple(values.shape),
                           dtype_name(keys.dtype), window)  # fmt: skip
            )
        return tuple(out)


def _retag(events: list, first: int) -> None:
    """The ops a cache's ``update`` ran, ``events[first:]``: integer outputs (a StaticCache's
    positions and length counter) are not cache storage, untagged; an input that an earlier
    op of the same update wrote as cache (a full StaticSlidingWindowLayer's rolled copy,
    then copied back) is a cache read, tagged."""
    made: set[int] = set()
    for i in range(first, len(events)):
        ev = events[i]
        call = ev.call
        ins = tuple(replace(t, kv=True) if not t.kv and t.sid in made else t
                    for t in call.inputs)  # fmt: skip
        outs = tuple(replace(t, kv=False) if t.kv and not _floating(t.dtype) else t
                     for t in call.outputs)  # fmt: skip
        made.update(t.sid for t in outs if t.kv and t.sid)
        if ins != call.inputs or outs != call.outputs:
            swap = {id(a): b for a, b in zip(call.inputs, ins)}
            args = {k: _swapped(v, swap) for k, v in call.args.items()}
            events[i] = replace(ev, call=replace(call, args=args, inputs=ins, outputs=outs))


def _swapped(value: Any, swap: dict[int, Any]) -> Any:
    """An op argument with its tensors replaced by their retagged copies."""
    if isinstance(value, (tuple, list)):
        return type(value)(_swapped(v, swap) for v in value)
    return swap.get(id(value), value)


def _floating(dtype: str) -> bool:
    kind = getattr(torch, dtype, None)
    return isinstance(kind, torch.dtype) and (kind.is_floating_point or kind.is_complex)


def _tracer() -> OpTracer | None:
    for mode in reversed(_get_current_dispatch_mode_stack()):
        if isinstance(mode, OpTracer):
            return mode
    return None


def trace_phase(
    model: Any,
    *,
    batch: int,
    tokens: int,
    context: int = 0,
    template: tuple[LayerCache, ...] | None = None,
    convention: str = "exact",
    label: str | None = None,
    kind: str = "dynamic",
    max_cache_len: int | None = None,
) -> PhaseTrace:
    """Trace ``tokens`` new tokens per sequence of ``batch`` against a cache holding
    ``context`` tokens (0: a prefill; else ``template``, the cache a prefill left, gives
    each layer's shapes). ``kind``: the cache object, ``dynamic`` (what ``generate()``
    makes) or ``static`` (transformers' ``StaticCache`` of ``max_cache_len`` tokens)."""
    from modelmeter.frontends.torch.tracing import _run

    cache = new_cache(model, kind, max_cache_len)
    watch = CacheWatch(cache)
    if context:
        _prefill_cache(cache, template or (), context)
    name = cache_argument(model)
    specs = InputSpecs([], {"input_ids": Shaped((batch, tokens), "int64"), name: cache,
                            "use_cache": True})  # fmt: skip
    result = _run(model, specs, False, convention, None, label or type(model).__name__)
    refused = mixed_dtypes(result.events)
    if refused:
        raise ModelRunError(refused)
    layers = watch.layers()
    if kind == "static":  # a static window layer keeps min(window, max_cache_len) only
        layers = _true_windows(model, layers)
    result.inputs = [i for i in result.inputs if i.shape]  # the cache object is no tensor
    return PhaseTrace(result, layers)


def _true_windows(model: Any, layers: tuple[LayerCache, ...]) -> tuple[LayerCache, ...]:
    """``layers`` with each sliding-window layer's window as the model's DynamicCache layer
    has it (a StaticSlidingWindowLayer only knows min(window, max_cache_len))."""
    dynamic = new_cache(model).layers
    if len(dynamic) != len(layers):
        return layers
    return tuple(
        replace(x, window=getattr(d, "sliding_window", None) or x.window)
        if x.window else x for x, d in zip(layers, dynamic)
    )  # fmt: skip


def _prefill_cache(cache: Any, template: tuple[LayerCache, ...], context: int) -> None:
    """Fill ``cache`` with ``context`` tokens of meta keys and values by its own ``update``."""
    if len(template) != len(cache.layers):
        raise InputError("the cache's layers differ from the prefill's")
    for layer, t in zip(cache.layers, template):
        dtype = getattr(torch, t.dtype)
        k = torch.empty((*t.key_shape[:-2], context, t.key_shape[-1]), device="meta",
                        dtype=dtype)  # fmt: skip
        v = torch.empty((*t.value_shape[:-2], context, t.value_shape[-1]), device="meta",
                        dtype=dtype)  # fmt: skip
        layer.update(k, v)


def held(
    model: Any, template: tuple[LayerCache, ...], tokens: int, kind: str = "dynamic"
) -> tuple[LayerCache, ...]:
    """What each layer of the model's cache holds after taking ``tokens`` tokens (the
    cache's own ``update`` on meta tensors shaped as ``template``; the model does not run).
    ``static``: a ``StaticCache`` sized to ``tokens`` (its buffers: ``tokens`` each, or the
    window for a sliding-window layer)."""
    cache = new_cache(model, kind, tokens)
    _prefill_cache(cache, template, tokens)
    return CacheWatch(cache).layers()


__all__ = ["CACHE_KINDS", "LayerCache", "held", "PhaseTrace", "cache_argument", "new_cache", "trace_phase"]
