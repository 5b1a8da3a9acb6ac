"""The generate use case: ``generate(model, prompt=P, new=G, batch=B) -> GenerationResult``.

A prefill of P tokens and decode steps are traced from the model with its own cache object
(:mod:`modelmeter.frontends.torch.kvcache`); a decode step's counts are fitted as exact
piecewise polynomials in the context (pieces cut where a sliding-window layer of the model
stops growing; each piece checked at contexts it was not fitted on) and summed over the G
steps in closed form; the cache each sequence holds is fitted the same way in the tokens
held, from the cache object alone. With a chip, the roofline gives the times.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelmeter.analysis import cache_layout
from modelmeter.analysis.experts import ROUTING
from modelmeter.analysis.generation import (
    DecodeCurve,
    OpCurves,
    StepCounts,
    fit_contexts,
    fit_piece,
    kv_bytes,
    op_keys,
    op_vector,
    pieces,
)
from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.generation_moe import routed_experts, routed_prefill
from modelmeter.analysis.generation_result import GenerationResult
from modelmeter.analysis.paged_blocks import layer_bytes
from modelmeter.analysis.polynomial import NotPolynomial, Piecewise
from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.host import collector_paused
from modelmeter.registry import CONVENTIONS, ZeroCost, lookup
from modelmeter.storage import Pricing
from modelmeter.usecases.generate_fusion import fuse_rules, fused_generation
from modelmeter.usecases.generate_tp import device_memory, serving, with_communication


def _whole(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"{name} must be a whole number >= {least} (got {value!r})")
    return value


@collector_paused()
def generate(
    model: Any,
    *,
    prompt: int,
    new: int,
    batch: int = 1,
    hardware: Any = None,
    convention: str = "exact",
    samples: int = 17,
    weights: Any = None,
    kv: Any = None,
    cache: str = cache_layout.DEFAULT,
    label: str | None = None,
    roofline_options: dict[str, Any] | None = None,
    block_size: int | None = None,
    max_cache_len: int | None = None,
    progress: Any = None,
    tensor_parallel: int = 1,
    all_reduce: str = "ring",
    fuse: Any = None,
) -> GenerationResult:
    """Analyse generating ``new`` tokens after a ``prompt`` for ``batch`` sequences.

    ``model``: a transformers decoder (an ``nn.Module``) or a name (``hf:llama-2-7b``).
    ``hardware``: a chip name or a HardwareSpec (TTFT, per-token latency, tokens/s, memory
    against its capacity). ``samples``: contexts the decode roofline is evaluated at (every
    one when ``new`` is at most that). ``weights``/``kv``: storage formats of the weights
    (``int4``, ``int8``, ``fp8`` ...) and of the KV cache (:mod:`modelmeter.storage`).
    ``cache``: the KV-cache layout, ``paged``, ``static`` (transformers' StaticCache,
    traced), ``inplace`` or ``dynamic`` (:mod:`modelmeter.analysis.cache_layout`);
    ``block_size``: a paged cache's block (default 16 tokens); ``max_cache_len``: the tokens
    a static or inplace cache is preallocated to (default prompt + new). ``label``: the
    model's name (default: the name given, or the module's class). ``roofline_options``:
    ``tf32``, ``ideal``, ``runtime``. ``progress(stage, done, total)``: called before each
    trace. ``tensor_parallel``: T GPUs serving one replica, memory and times one device's
    (``all_reduce``: ``ring`` or ``custom``). ``fuse``: fusion rules (``all``, ``none``, a
    comma list or a sequence): ``fusion`` prices it fused too (:mod:`.generate_fusion`)."""
    prompt, new, batch = _whole("prompt", prompt), _whole("new", new), _whole("batch", batch)
    samples, rules = _whole("samples", samples, 2), fuse_rules(fuse)
    setup = _layout(convention, cache, prompt + new, block_size, max_cache_len)
    pricing = Pricing.of(weights, kv)  # a bad format fails before the model loads
    kv_format = pricing.kv if pricing is not None else None
    spec = _spec(hardware)
    model, label, limit = _decoder(model, label, prompt + new)
    tp = serving(tensor_parallel, all_reduce, model, spec)
    if progress:  # the decode contexts to trace are known once the prefill shows the layers
        progress(f"tracing the prefill ({prompt} tokens)", 0, None)
    pre = _phase(model, setup, batch=batch, tokens=prompt, convention=convention, label=label)
    prefill = build(pre.trace, pricing=pricing)
    template = pre.layers
    windows = tuple(sorted({w for w in (x.window for x in template) if w}))
    breaks = setup.breaks(windows)
    plan = {c for a, b in pieces(prompt, prompt + new - 1, breaks) for c in fit_contexts(a, b)}
    step = _Decode(model, setup, template, pricing, kv_format, progress, 1 + len(plan),
                   {"batch": batch, "convention": convention, "label": label})  # fmt: skip
    traced = step.traced
    curve, ops = _fit_decode(step, prompt, prompt + new - 1, breaks, pricing)
    curve = replace(curve, traced=tuple(sorted(traced)))
    decode = step(prompt)[1]
    curve, saved = routed_experts(decode, curve, ops, batch)
    copy = lambda: build(pre.trace, pricing=pricing)  # noqa: E731
    timed, pre_saved = routed_prefill(prefill, batch * prompt, copy)
    sizes = (batch, prompt, new, limit or max(prompt + new, 1 << 20))
    plan, memory, timing, fusion = _answers(
        (model, template, kv_format, spec, setup, tp), (pre, prefill, timed, copy),
        (step, ops, [traced[c][1] for c in traced]), sizes, breaks,
        (samples, roofline_options or {}, rules))  # fmt: skip
    notes = _notes(prefill, decode, saved, batch, setup) + _prefill_note(pre_saved, batch * prompt)
    notes += list(plan.notes) if plan is not None else []
    return GenerationResult(
        model=label, batch=batch, prompt=prompt, new=new, convention=convention,
        prefill=prefill, decode=decode,
        prefill_counts=StepCounts.of(timed, *kv_bytes(pre.trace.events, _counted, kv_format)),
        storage=pricing.label() if pricing is not None else "",
        curve=curve, memory=memory, timing=timing, windows=windows, layout=setup.layout,
        cache="StaticCache" if setup.kind == "static" else "DynamicCache",
        notes=tuple(dict.fromkeys(notes)), block_size=setup.to_dict()["block_size"],
        max_cache_len=setup.max_cache_len or None, prefill_weight_bytes_saved=pre_saved,
        tensor_parallel=plan, fusion=fusion,
    )  # fmt: skip


def _answers(how: tuple, prefill: tuple, decodes: tuple, sizes: tuple[int, int, int, int],
             breaks: list[int], pricing: tuple[int, dict[str, Any], Any]) -> tuple[Any, ...]:  # fmt: skip
    """(the tensor-parallel plan or None, memory, timing, fusion or None): one device's when ``tp`` (in
    ``how``) is given. ``prefill``: its trace, Report, the Report its time is priced from
    and a maker of fresh copies; ``decodes``: the step tracer, the per-op curves and the
    traced Reports; ``sizes``: batch, prompt, new, the most tokens."""
    from modelmeter.frontends.torch.kvcache import held

    model, template, kv_format, spec, setup, tp = how
    pre, report, timed, copy = prefill
    step, ops, reports = decodes
    batch, prompt, new, max_tokens = sizes
    starts = list(ops.starts)
    held_bytes = lambda t: [x.nbytes(kv_format) for x in held(model, template, t, setup.kind)]  # noqa: E731
    plan = None
    if tp is not None:
        tp.use_cache(template)
        plan = tp.plan((pre.trace, step(prompt)[0].trace), (report, step(prompt)[1]), batch)
        held_bytes, timed = tp.held(held_bytes), tp.prefill(pre.trace, report, timed, copy)
        ops = tp.decode(ops, step)
        plan = replace(plan, prefill_device=timed.total().cost,
                       decode_device=ops.report_at(prompt).total().cost)
    memory = _memory(held_bytes, report, reports, spec, setup, batch=batch,
                     tokens=prompt + new, max_tokens=max_tokens, breaks=breaks)  # fmt: skip
    price = None if spec is None else lambda t, o: _timing(
        t, o, spec, (batch, prompt, new), breaks, pricing[0], pricing[1])  # noqa: E731
    timing = None if price is None else price(timed, ops)
    add = (lambda t: t) if plan is None else lambda t: with_communication(t, plan, new)  # noqa: E731
    if plan is not None:
        memory, timing = device_memory(memory, plan), add(timing)
    fusion = None if pricing[2] is None else fused_generation(
        pricing[2], (report, timed), (ops, step, starts), price, add)
    return plan, memory, timing, fusion


def _decoder(model: Any, label: str | None, tokens: int) -> tuple[Any, str, int | None]:
    """The decoder, its name and its positions limit (InputError past it)."""
    model, named = load_decoder(model)
    label = label or named
    limit = max_positions(model)
    if limit is not None and tokens > limit:
        raise InputError(f"prompt + new = {tokens} tokens is more than the "
                         f"{limit} positions {label} takes (max_position_embeddings)")  # fmt: skip
    return model, label, limit


def _timing(timed: Any, ops: Any, spec: Any, sizes: tuple[int, int, int], breaks: list[int],
            samples: int, options: dict[str, Any]) -> Any:  # fmt: skip
    """TTFT, per-token and end-to-end times on ``spec`` (``sizes``: batch, prompt, new)."""
    from modelmeter.analysis.generation_time import generation_timing

    batch, prompt, new = sizes
    return generation_timing(timed, ops, spec, batch=batch, prompt=prompt, new=new,
                             breaks=breaks, most=samples, options=options)  # fmt: skip


def _layout(
    convention: str, cache: str, tokens: int, block_size: Any, max_cache_len: Any
) -> cache_layout.CacheSetup:
    """The cache layout and its sizes, once they and the FLOP convention are known good
    (else InputError)."""
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    return cache_layout.setup(cache, tokens, block_size, max_cache_len)


def _phase(model: Any, setup: cache_layout.CacheSetup, **kw: Any) -> Any:
    """A traced phase (``trace_phase``) with the cache object of ``setup``'s layout, its
    cache appends as that layout writes them."""
    from modelmeter.frontends.torch.kvcache import trace_phase

    d = trace_phase(model, kind=setup.kind, max_cache_len=setup.max_cache_len or None, **kw)
    d.trace = cache_layout.served(d.trace, setup.layout)
    return d


def _prefill_note(saved: int, tokens: int) -> list[str]:
    if not saved:
        return []
    return [f"mixture of experts: the prefill's {tokens} routed token(s) read the expected "
            f"distinct experts of each MoE layer (same rule), {saved:,} weight bytes fewer "
            "than the grouped matmuls' whole operands (the prefill Report counts those)"]


def _notes(prefill: Any, decode: Any, saved: int, batch: int, setup: Any) -> list[str]:
    notes = [cache_layout.describe(setup), *prefill.notes]
    if saved:
        notes.append(
            f"mixture of experts: a decode step's {batch} token(s) read the expected distinct "
            f"experts of each MoE layer ({ROUTING}), {saved:,} weight bytes per step fewer "
            "than the grouped matmuls' whole operands (the decode Report counts those)"
        )
    if prefill.unsupported or decode.unsupported:
        ops_left = sorted({*prefill.unsupported, *decode.unsupported})
        notes.append(f"unsupported ops (not counted): {', '.join(ops_left)}")
    return notes


def _memory(
    held_bytes: Any, prefill: Any, decodes: list[Any], spec: Any, setup: Any, *, batch: int,
    tokens: int, max_tokens: int, breaks: list[int],
) -> GenerationMemory:  # fmt: skip
    top = max(max_tokens, setup.allocated(max_tokens))
    kv_seq, by_layer = _fit_cache(held_bytes, batch, setup.allocated(tokens), top, breaks)
    layers = _layer_caps(held_bytes, batch, top) if setup.layout == "paged" else ()
    if layers:
        by_layer = layer_bytes(tokens, layers, setup.block)
    return GenerationMemory(
        weight_bytes=prefill.size_by_dtype()["native"],
        kv_per_sequence=kv_seq,
        kv_by_layer=by_layer,
        batch=batch,
        tokens=tokens,
        max_tokens=max_tokens,
        prefill_activation_bytes=prefill.peak_activation_bytes,
        decode_activation_bytes=max(r.peak_activation_bytes for r in decodes),
        capacity=spec.capacity if spec is not None else None,
        chip=spec.name if spec is not None else None,
        block=setup.block,
        reserved=setup.max_cache_len,
        layers=layers,
    )


def _layer_caps(held: Any, batch: int, top: int) -> tuple[tuple[int, int], ...]:
    """Each layer's (bytes per token per sequence, tokens it keeps at most, 0: all), read
    from the model's cache after 1 and ``top`` tokens."""
    one, full = held(1), held(top)
    out = []
    for a, b in zip(one, full, strict=True):
        per = a // batch
        kept = b // batch // per if per else 0
        out.append((per, kept if kept < top else 0))
    return tuple(out)


class _Decode:
    """Decode steps, each context traced once: (phase, Report, StepCounts); ``progress`` is
    told before each trace (the prefill was trace 1 of ``total``)."""

    def __init__(self, model: Any, setup: Any, template: Any, pricing: Any, kv_format: Any,
                 progress: Any, total: int, kw: dict[str, Any]) -> None:  # fmt: skip
        self.model, self.setup, self.template, self.kw = model, setup, template, kw
        self.pricing, self.kv_format = pricing, kv_format
        self.progress, self.total = progress, total
        self.traced: dict[int, Any] = {}

    def __call__(self, c: int) -> Any:
        if c not in self.traced:
            if self.progress:
                done = 1 + len(self.traced)
                self.progress(f"tracing a decode step at context {c}", done, self.total)
            d = _phase(self.model, self.setup, tokens=1, context=c, template=self.template,
                       **self.kw)  # fmt: skip
            report = build(d.trace, pricing=self.pricing)
            counts = StepCounts.of(report, *kv_bytes(d.trace.events, _counted, self.kv_format))
            self.traced[c] = (d, report, counts)
        return self.traced[c]


def _counted(ev: Any) -> bool:
    entry = lookup(ev.frontend, ev.target)
    return entry is not None and not isinstance(entry, ZeroCost)


def _fit_decode(
    step: Any, lo: int, hi: int, breaks: list[int], pricing: Any
) -> tuple[DecodeCurve, OpCurves]:
    """The decode counts (totals and per op) as piecewise polynomials on ``lo .. hi``."""
    fields = ("macs", "flops", "bytes_read", "bytes_written", "weight_bytes",
              "kv_bytes_read", "kv_bytes_written")  # fmt: skip
    starts: list[int] = []
    total_polys: list[list[Any]] = []
    ops = OpCurves()
    for start, end in pieces(lo, hi, breaks):
        keys = op_keys(step(start)[1])

        def vector(c: int, keys: list[str] = keys) -> list[int]:
            _, report, counts = step(c)
            if op_keys(report) != keys:
                raise NotPolynomial(f"the decode step runs other ops at context {c}")
            return [getattr(counts, f) for f in fields] + op_vector(report)

        polys, _ = fit_piece(vector, start, end)
        starts.append(start)
        total_polys.append(polys[: len(fields)])
        template = build(step(start)[0].trace, pricing=pricing)  # a copy to rewrite
        ops.add(start, template, polys[len(fields) :])
    counts = {
        f: Piecewise(tuple(starts), tuple(p[i] for p in total_polys)) for i, f in enumerate(fields)
    }
    return DecodeCurve(counts, lo, hi), ops


def _fit_cache(
    held: Any, batch: int, tokens: int, max_tokens: int, breaks: list[int]
) -> tuple[Piecewise, tuple[int, ...]]:
    """Bytes one sequence's cache holds after T tokens (1 .. max_tokens), piecewise; and each
    layer's bytes per sequence at ``tokens``."""

    def per_sequence(t: int) -> list[int]:
        layers = held(t)
        if any(b % batch for b in layers):
            raise NotPolynomial("the cache is not the same for every sequence of the batch")
        return [sum(layers) // batch]

    starts, polys = [], []
    for start, end in pieces(1, max_tokens, breaks):
        p, _ = fit_piece(per_sequence, start, end)
        starts.append(start)
        polys.append(p[0])
    by_layer = tuple(b // batch for b in held(tokens))
    return Piecewise(tuple(starts), tuple(polys)), by_layer


def load_decoder(model: Any) -> tuple[Any, str]:
    if isinstance(model, str):
        from modelmeter.models import load

        loaded = load(model)
        return loaded.model, loaded.label
    if not callable(model) or not hasattr(model, "forward"):
        raise InputError("generate needs a PyTorch language model (an nn.Module) or a name")
    return model, type(model).__name__


def max_positions(model: Any) -> int | None:
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config(decoder=True)
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def _spec(hardware: Any) -> Any:
    if hardware is None:
        return None
    from modelmeter.hardware import HardwareSpec, load_spec

    return hardware if isinstance(hardware, HardwareSpec) else load_spec(str(hardware))


__all__ = ["generate", "GenerationResult", "load_decoder", "max_positions"]
