"""The typed result of a generation analysis (:func:`modelmeter.usecases.generate.generate`),
and its JSON under the schema ``modelmeter.generation/2`` (/2 adds ``tensor_parallel``: the
plan of one device of T, null for one device; everything else is as in /1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.generation import DecodeCurve, StepCounts
from modelmeter.analysis.generation_fusion import GenerationFusion
from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.generation_time import GenerationTiming
from modelmeter.analysis.serving_comm import TensorPlan
from modelmeter.report import Report

SCHEMA = "modelmeter.generation/2"


@dataclass(frozen=True)
class GenerationResult:
    """Batch ``batch`` of sequences: a prompt of ``prompt`` tokens (the prefill), then
    ``new`` decode steps at contexts ``prompt .. prompt + new - 1``.

    ``prefill``/``decode``: the traced Reports (the decode step at the first context);
    ``prefill_counts``: the prefill's totals with its KV-cache bytes; ``curve``: a decode
    step's counts as exact piecewise polynomials in the context; ``memory``: weights, cache
    and activations against the chip; ``timing``: None without a chip."""

    model: str
    batch: int
    prompt: int
    new: int
    convention: str
    prefill: Report
    decode: Report
    prefill_counts: StepCounts
    curve: DecodeCurve
    memory: GenerationMemory
    timing: GenerationTiming | None = None
    cache: str = "DynamicCache"  # the cache object traced
    layout: str = "dynamic"  # the KV-cache layout the bytes assume (analysis.cache_layout)
    windows: tuple[int, ...] = ()
    storage: str = ""  # the storage formats bytes assume ("": the model's dtypes)
    notes: tuple[str, ...] = field(default_factory=tuple)
    block_size: int | None = None  # a paged cache's block of tokens
    max_cache_len: int | None = None  # the tokens a static/inplace cache is preallocated to
    prefill_weight_bytes_saved: int = 0  # MoE: expert weights the prefill's tokens miss
    # tensor parallelism (None: one device); with it ``memory`` and ``timing`` are one
    # device's, the phase counts the whole replica's
    tensor_parallel: TensorPlan | None = None
    # generate(fuse=...): the generation fused too (None: not asked; the rest is unfused)
    fusion: GenerationFusion | None = None

    @property
    def first(self) -> StepCounts:
        """The first decode step (context ``prompt``)."""
        return self.curve.at(self.prompt)

    @property
    def last(self) -> StepCounts:
        return self.curve.at(self.prompt + self.new - 1)

    @property
    def decode_total(self) -> StepCounts:
        """All ``new`` decode steps, summed in closed form."""
        return self.curve.sum(self.prompt, self.prompt + self.new - 1)

    @property
    def total(self) -> StepCounts:
        """Prefill and every decode step."""
        a, b = self.prefill_counts, self.decode_total
        return StepCounts(**{k: getattr(a, k) + getattr(b, k) for k in a.to_dict()})

    def mean(self, count: str) -> float:
        """A decode step's ``count`` averaged over the ``new`` steps."""
        return getattr(self.decode_total, count) / self.new

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "batch": self.batch,
            "prompt": self.prompt,
            "new": self.new,
            "convention": self.convention,
            "cache": self.cache,
            "cache_layout": self.layout,
            "cache_block_size": self.block_size,
            "max_cache_len": self.max_cache_len,
            "storage": self.storage or None,
            "sliding_windows": list(self.windows),
            "prefill": {"counts": self.prefill_counts.to_dict(), "report": self.prefill.to_dict(),
                        "expert_weight_bytes_not_read": self.prefill_weight_bytes_saved},
            "decode": {
                "first": self.first.to_dict(),
                "mean": {k: self.mean(k) for k in self.first.to_dict()},
                "last": self.last.to_dict(),
                "total": self.decode_total.to_dict(),
                "curve": self.curve.to_dict(),
                "report": self.decode.to_dict(),
            },
            "total": self.total.to_dict(),
            "memory": self.memory.to_dict(),
            "timing": self.timing.to_dict() if self.timing is not None else None,
            "tensor_parallel": (self.tensor_parallel.to_dict()
                                if self.tensor_parallel is not None else None),
            "notes": list(self.notes),
        } | ({"fusion": self.fusion.to_dict()} if self.fusion is not None else {})


__all__ = ["GenerationResult", "SCHEMA"]
