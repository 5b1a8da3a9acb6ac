"""Generation against batch and against context, for the charts of ``modelmeter generate
--plot``: the use case :func:`generation_sweeps` gives :func:`~modelmeter.usecases.generate.
generate`'s figures at several batches and once over the model's whole context range.

- **Against batch**: the same prompt and new tokens at batches 1, 2, 4, ... up to twice the
  largest batch that fits (at most ``most`` points, always the asked batch): the mean
  per-token latency and the tokens/s of the whole generation; whether each fits.
- **Against context**: one generation from a 1-token prompt to the model's maximum positions
  at the asked batch (the decode curve fitted over that range), the decode step's roofline
  time at the contexts it is evaluated at, and the batch's tokens per second while decoding
  (B / time). The memory limit is the longest context that fits at that batch.

Each point is what that generation gives, but only the asked one is run: the others are
priced from exact formulas of the phases in (batch, context) fitted on a few traces
(:mod:`modelmeter.usecases.generate_grid`, :func:`priced_at`); where a figure is not a
polynomial, :func:`~modelmeter.usecases.generate.generate` runs at every point instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.generation_result import GenerationResult
from modelmeter.analysis.generation_time import GenerationTiming
from modelmeter.analysis.polynomial import NotPolynomial
from modelmeter.errors import InputError


@dataclass(frozen=True)
class SweepPoint:
    x: int
    per_token_s: float
    tokens_per_s: float
    fits: bool | None = None


@dataclass(frozen=True)
class GenerationSweeps:
    result: GenerationResult  # the asked generation
    by_batch: tuple[SweepPoint, ...]
    by_context: tuple[SweepPoint, ...]
    fitted: bool = False  # the other points priced from the phases' formulas (else traced)
    traces: int = 0  # phases traced for the formulas (0: every point ran generate)

    @property
    def max_batch(self) -> int | None:
        return self.result.memory.max_batch

    @property
    def max_context(self) -> int | None:
        return self.result.memory.max_context


def _batches(batch: int, largest: int | None, most: int) -> list[int]:
    top = max(2 * (largest or batch), batch, 1)
    out = {batch}
    b = 1
    while b <= top and len(out) < most:
        out.add(b)
        b *= 2
    return sorted(out)


def generation_sweeps(
    model: Any, *, prompt: int, new: int, batch: int, hardware: Any, most: int = 8,
    fit: bool = True, **kw: Any,
) -> GenerationSweeps:  # fmt: skip
    """The asked generation and its sweeps (see the module docstring); ``kw`` goes to
    ``generate`` (formats, convention). ``fit``: price the other batches and the context
    range from the phases' exact formulas in (batch, context) (:mod:`modelmeter.usecases.
    generate_grid`: a few traces; each point equals a separate ``generate`` run); False, or
    a figure that is not a polynomial: run ``generate`` at every batch and over the range."""
    from modelmeter.usecases.generate import generate, load_decoder, max_positions

    if hardware is None:
        raise InputError("the generation charts need a chip: --hardware (or --peak/--bandwidth)")
    model, label = load_decoder(model)
    kw = {"label": label, **kw}
    result = generate(model, prompt=prompt, new=new, batch=batch, hardware=hardware, **kw)
    batches = _batches(batch, result.memory.max_batch, most)
    limit = max_positions(model) or max(2 * (prompt + new), 4096)
    if fit and set(kw) <= _FITTED and result.layout in _LAYOUTS:
        try:
            return _fitted(model, result, batches, limit, hardware, **kw)
        except NotPolynomial:
            pass  # a figure is not a polynomial in the batch or the context: trace them
    by_batch = []
    for b in batches:
        g = result if b == batch else generate(model, prompt=prompt, new=new, batch=b,
                                               hardware=hardware, **kw)  # fmt: skip
        assert g.timing is not None
        by_batch.append(SweepPoint(b, g.timing.decode_mean_s, g.timing.tokens_per_s,
                                   g.memory.fits))  # fmt: skip
    whole = generate(model, prompt=1, new=limit - 1, batch=batch, hardware=hardware,
                     **{**kw, "max_cache_len": None})  # a static cache sized to the range
    assert whole.timing is not None
    t = whole.timing
    return GenerationSweeps(result, tuple(by_batch), _by_context(result, t.evaluated, t.times))


# the generate() keywords the fitted sweeps price as generate does (any other: traced)
_FITTED = {"label", "convention", "weights", "kv", "cache", "samples", "roofline_options",
           "block_size", "max_cache_len", "progress"}  # fmt: skip
# the cache layouts whose decode step the fit traces as generate does (a DynamicCache trace
# served as the layout writes it); static (a StaticCache of M slots, a step's cost that of
# M at every context): traced at every point
_LAYOUTS = ("dynamic", "inplace", "paged")


def _by_context(result: GenerationResult, contexts: Sequence[int],
                times: Sequence[float]) -> tuple[SweepPoint, ...]:  # fmt: skip
    """The context sweep's points: a decode step's time at each context evaluated over the
    whole range at the asked batch."""
    cap, b = result.memory.max_context, result.batch
    return tuple(
        SweepPoint(c, t, b / t if t else 0.0, None if cap is None else c + 1 <= cap)
        for c, t in zip(contexts, times)
    )


def _fitted(
    model: Any, result: GenerationResult, batches: list[int], limit: int, hardware: Any, *,
    label: str, convention: str = "exact", weights: Any = None, kv: Any = None,
    cache: str = "", samples: int = 17, roofline_options: dict[str, Any] | None = None,
    block_size: int | None = None, max_cache_len: int | None = None, progress: Any = None,
) -> GenerationSweeps:  # fmt: skip
    """The sweeps priced from the phases' exact formulas (``generation_sweeps``' ``fit``):
    at each batch the TTFT, the decode steps' exact sum and the memory as ``generate`` makes
    them, from the fitted Reports instead of traced ones. ``block_size``/``max_cache_len``
    size the cache's memory only (the asked ``result``'s, kept at every batch): a paged or
    in-place decode step reads the filled tokens whatever they are."""
    from modelmeter.analysis.generation_time import decode_sum
    from modelmeter.hardware import HardwareSpec, load_spec
    from modelmeter.storage import Pricing
    from modelmeter.usecases.generate_grid import fit_generation

    spec = hardware if isinstance(hardware, HardwareSpec) else load_spec(str(hardware))
    p, options = result.prompt, roofline_options or {}
    breaks = _breaks(result)
    grid = fit_generation(model, prompt=p, lo=1, hi=limit - 1, breaks=breaks,
                          far=max(*batches, 4), cache=result.layout, convention=convention,
                          label=label, pricing=Pricing.of(weights, kv),
                          progress=progress)  # fmt: skip
    by_batch = []
    for b in batches:
        timing, memory = result.timing, result.memory
        if b != result.batch:
            timing, memory = priced_at(grid, result, b, spec, samples=samples, options=options)
        assert timing is not None
        by_batch.append(SweepPoint(b, timing.decode_mean_s, timing.tokens_per_s, memory.fits))
    whole = decode_sum(grid.op_curves(result.batch, 1, limit - 1, breaks), spec, 1, limit - 1,
                       breaks, samples, options)  # fmt: skip
    xs = sorted(whole.seen)
    by_context = _by_context(result, xs, [whole.seen[c][0] for c in xs])
    return GenerationSweeps(result, tuple(by_batch), by_context, True, grid.traces)


def priced_at(
    grid: Any, result: GenerationResult, batch: int, spec: Any, *, samples: int = 17,
    options: dict[str, Any] | None = None,
) -> tuple[GenerationTiming, GenerationMemory]:  # fmt: skip
    """The timing and the memory ``generate`` gives at ``batch`` for ``result``'s prompt,
    new tokens and formats, from ``grid`` (a :class:`~modelmeter.analysis.generation_grid.
    GenerationGrid` of the same model and formats) instead of traces."""
    from modelmeter.analysis.generation_grid import traced_contexts
    from modelmeter.analysis.generation_time import generation_timing

    p, n = result.prompt, result.new
    breaks = _breaks(result)
    ops = grid.op_curves(batch, p, p + n - 1, breaks)
    timing = generation_timing(grid.prefill_at(batch), ops, spec, batch=batch, prompt=p, new=n,
                               breaks=breaks, most=samples, options=options or {})  # fmt: skip
    memory = replace(result.memory, batch=batch, prefill_activation_bytes=grid.prefill_peak(batch),
                     decode_activation_bytes=grid.decode_peak(batch, traced_contexts(
                         p, p + n - 1, breaks)))  # fmt: skip
    return timing, memory


def _breaks(result: GenerationResult) -> list[int]:
    """The contexts where a decode step's ops may change, as ``generate`` cuts them."""
    from modelmeter.analysis.cache_layout import CacheSetup

    return CacheSetup(result.layout).breaks(result.windows)


__all__ = ["GenerationSweeps", "SweepPoint", "generation_sweeps", "priced_at"]
