"""Generation against batch and against context, for the charts of ``modelmeter generate
--plot``: the use case :func:`generation_sweeps` runs :func:`~modelmeter.usecases.generate.
generate` at several batches and once over the model's whole context range.

- **Against batch**: the same prompt and new tokens at batches 1, 2, 4, ... up to twice the
  largest batch that fits (at most ``most`` points, always the asked batch): the mean
  per-token latency and the tokens/s of the whole generation; whether each fits.
- **Against context**: one generation from a 1-token prompt to the model's maximum positions
  at the asked batch (the decode curve fitted over that range), the decode step's roofline
  time at the contexts it is evaluated at, and the batch's tokens per second while decoding
  (B / time). The memory limit is the longest context that fits at that batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.analysis.generation_result import GenerationResult
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
    model: Any, *, prompt: int, new: int, batch: int, hardware: Any, most: int = 8, **kw: Any
) -> GenerationSweeps:
    """The asked generation and its sweeps (see the module docstring); ``kw`` goes to
    ``generate`` (formats, convention)."""
    from modelmeter.usecases.generate import generate, load_decoder, max_positions

    if hardware is None:
        raise InputError("the generation charts need a chip: --hardware (or --peak/--bandwidth)")
    model, label = load_decoder(model)
    kw = {"label": label, **kw}
    result = generate(model, prompt=prompt, new=new, batch=batch, hardware=hardware, **kw)
    by_batch = []
    for b in _batches(batch, result.memory.max_batch, most):
        g = result if b == batch else generate(model, prompt=prompt, new=new, batch=b,
                                               hardware=hardware, **kw)  # fmt: skip
        assert g.timing is not None
        by_batch.append(SweepPoint(b, g.timing.decode_mean_s, g.timing.tokens_per_s,
                                   g.memory.fits))  # fmt: skip
    limit = max_positions(model) or max(2 * (prompt + new), 4096)
    whole = generate(model, prompt=1, new=limit - 1, batch=batch, hardware=hardware,
                     **{**kw, "max_cache_len": None})  # a static cache sized to the range
    assert whole.timing is not None
    cap = result.memory.max_context
    by_context = tuple(
        SweepPoint(c, t, batch / t if t else 0.0, None if cap is None else c + 1 <= cap)
        for c, t in zip(whole.timing.evaluated, whole.timing.times)
    )
    return GenerationSweeps(result, tuple(by_batch), by_context)


__all__ = ["GenerationSweeps", "SweepPoint", "generation_sweeps"]
