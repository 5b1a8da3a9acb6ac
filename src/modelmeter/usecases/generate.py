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
from modelmeter.analysis.generation_moe import routed_experts
from modelmeter.analysis.generation_result import GenerationResult
from modelmeter.analysis.polynomial import NotPolynomial, Piecewise
from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.registry import CONVENTIONS, ZeroCost, lookup
from modelmeter.storage import Pricing


def _whole(name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"{name} must be a whole number >= {least} (got {value!r})")
    return value


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
    progress: Any = None,
) -> GenerationResult:
    """Analyse generating ``new`` tokens after a ``prompt`` for ``batch`` sequences.

    ``model``: a transformers decoder (an ``nn.Module``) or a name (``hf:llama-2-7b``).
    ``hardware``: a chip name or a HardwareSpec (TTFT, per-token latency, tokens/s, memory
    against its capacity). ``samples``: contexts the decode roofline is evaluated at (every
    one when ``new`` is at most that). ``weights``/``kv``: storage formats of the weights
    (``int4``, ``int8``, ``fp8`` ...) and of the KV cache (:mod:`modelmeter.storage`).
    ``cache``: the KV-cache layout bytes assume, ``paged``, ``static`` or ``dynamic``
    (:mod:`modelmeter.analysis.cache_layout`). ``label``: the model's name (default: the
    name given, or the module's class). ``roofline_options``: ``tf32``, ``ideal``, ``runtime``.
    ``progress(stage, done, total)``: called before each trace (the prefill, then each decode
    context the fit needs; their number is known in advance)."""
    prompt, new, batch = _whole("prompt", prompt), _whole("new", new), _whole("batch", batch)
    samples = _whole("samples", samples, 2)
    cache = _layout(convention, cache)
    pricing = Pricing.of(weights, kv)  # a bad format fails before the model loads
    kv_format = pricing.kv if pricing is not None else None
    spec = _spec(hardware)
    model, named = load_decoder(model)
    label = label or named
    limit = max_positions(model)
    if limit is not None and prompt + new > limit:
        raise InputError(f"prompt + new = {prompt + new} tokens is more than the "
                         f"{limit} positions {label} takes (max_position_embeddings)")  # fmt: skip
    from modelmeter.frontends.torch.kvcache import held
    if progress:  # the decode contexts to trace are known once the prefill shows the layers
        progress(f"tracing the prefill ({prompt} tokens)", 0, None)
    pre = _phase(model, cache, batch=batch, tokens=prompt, convention=convention, label=label)
    prefill = build(pre.trace, pricing=pricing)
    template = pre.layers
    windows = tuple(sorted({w for w in (x.window for x in template) if w}))
    breaks = sorted({b for w in windows for b in (w - 1, w + 1)})
    plan = {c for a, b in pieces(prompt, prompt + new - 1, breaks) for c in fit_contexts(a, b)}
    step = _Decode(model, cache, template, pricing, kv_format, progress, 1 + len(plan),
                   {"batch": batch, "convention": convention, "label": label})  # fmt: skip
    traced = step.traced

    curve, ops = _fit_decode(step, prompt, prompt + new - 1, breaks, pricing)
    curve = replace(curve, traced=tuple(sorted(traced)))
    decode = step(prompt)[1]
    curve, saved = routed_experts(decode, curve, ops, batch)
    max_tokens = limit or max(prompt + new, 1 << 20)
    memory = _memory(
        lambda t: [x.nbytes(kv_format) for x in held(model, template, t)],
        prefill, [traced[c][1] for c in traced], spec,
        batch=batch, tokens=prompt + new, max_tokens=max_tokens, breaks=breaks,
    )  # fmt: skip
    timing = None
    if spec is not None:
        from modelmeter.analysis.generation_time import generation_timing

        timing = generation_timing(prefill, ops, spec, batch=batch, prompt=prompt, new=new,
                                   breaks=breaks, most=samples,
                                   options=roofline_options or {})  # fmt: skip
    notes = _notes(prefill, decode, saved, batch, cache)
    return GenerationResult(
        model=label, batch=batch, prompt=prompt, new=new, convention=convention,
        prefill=prefill, decode=decode,
        prefill_counts=StepCounts.of(prefill, *kv_bytes(pre.trace.events, _counted, kv_format)),
        storage=pricing.label() if pricing is not None else "",
        curve=curve, memory=memory, timing=timing, windows=windows, layout=cache,
        notes=tuple(dict.fromkeys(notes)),
    )  # fmt: skip


def _layout(convention: str, cache: str) -> str:
    """The cache layout, once it and the FLOP convention are known names (else InputError)."""
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    return cache_layout.check(cache)


def _phase(model: Any, cache: str, **kw: Any) -> Any:
    """A traced phase (``trace_phase``) with its cache appends as the ``cache`` layout
    writes them."""
    from modelmeter.frontends.torch.kvcache import trace_phase

    d = trace_phase(model, **kw)
    d.trace = cache_layout.served(d.trace, cache)
    return d


def _notes(prefill: Any, decode: Any, saved: int, batch: int, cache: str) -> list[str]:
    notes = [cache_layout.describe(cache), *prefill.notes]
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
    held_bytes: Any, prefill: Any, decodes: list[Any], spec: Any, *, batch: int, tokens: int,
    max_tokens: int, breaks: list[int],
) -> GenerationMemory:  # fmt: skip
    kv_seq, by_layer = _fit_cache(held_bytes, batch, tokens, max_tokens, breaks)
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
    )


class _Decode:
    """Decode steps, each context traced once: (phase, Report, StepCounts); ``progress`` is
    told before each trace (the prefill was trace 1 of ``total``)."""

    def __init__(self, model: Any, cache: str, template: Any, pricing: Any, kv_format: Any,
                 progress: Any, total: int, kw: dict[str, Any]) -> None:  # fmt: skip
        self.model, self.cache, self.template, self.kw = model, cache, template, kw
        self.pricing, self.kv_format = pricing, kv_format
        self.progress, self.total = progress, total
        self.traced: dict[int, Any] = {}

    def __call__(self, c: int) -> Any:
        if c not in self.traced:
            if self.progress:
                done = 1 + len(self.traced)
                self.progress(f"tracing a decode step at context {c}", done, self.total)
            d = _phase(self.model, self.cache, tokens=1, context=c, template=self.template,
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
