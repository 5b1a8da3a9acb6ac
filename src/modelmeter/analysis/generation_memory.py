"""Memory of generation: weights, the KV cache (per token, per sequence, by layer, for the
batch), peak activations, and the total against a chip's capacity, with the largest batch
and the longest context that fit. Pure: the cache size per sequence is an exact piecewise
polynomial in the tokens held (fitted by the use case from the model's own cache object).

The rule every answer uses (one function, :meth:`GenerationMemory.needed`)::

    needed(B, T) = weights + B * (kv_per_sequence(T) + activations_per_sequence)

``kv_per_sequence(T)`` is taken at the tokens the cache *allocates* for T held
(:meth:`GenerationMemory.allocated`): T itself for a dynamic cache, ceil(T/B) x B for a
paged one (blocks of B tokens; the last block's unused slots are padding), and at least
``reserved`` for a cache preallocated to max_cache_len (static, inplace). A paged cache
with ``layers`` (each layer's bytes per token and window cap) counts each layer's own blocks
(:mod:`modelmeter.analysis.paged_blocks`: a sliding-window layer keeps the blocks covering
its window), and ``needed`` takes the most blocks the generation held up to T (a window
layer's count drops by one block when its start crosses a block boundary).

``activations_per_sequence`` is the larger peak of live activations of the traced prefill
and decode step (the cache apart), divided by the traced batch and rounded up: activations
are taken as linear in the batch and as at the analysed prompt (they do not grow with T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelmeter.analysis.paged_blocks import layer_bytes
from modelmeter.analysis.polynomial import Piecewise


@dataclass(frozen=True)
class GenerationMemory:
    weight_bytes: int
    kv_per_sequence: Piecewise  # bytes one sequence's cache holds after T tokens
    kv_by_layer: tuple[int, ...]  # bytes per sequence of each layer at ``tokens``
    batch: int
    tokens: int  # tokens held at the end of the generation (prompt + new)
    max_tokens: int  # the model's maximum positions (the search's upper end)
    prefill_activation_bytes: int
    decode_activation_bytes: int
    capacity: float | None = None
    chip: str | None = None
    block: int = 1  # tokens per paged block (1: not paged)
    reserved: int = 0  # tokens a static/in-place cache is preallocated to (0: none)
    layers: tuple[tuple[int, int], ...] = ()  # per layer (bytes per token, window cap or 0)

    @property
    def paged_layers(self) -> bool:
        """Whether memory is counted layer by layer in blocks (a paged cache whose layers
        are known)."""
        return self.block > 1 and bool(self.layers)

    def allocated(self, tokens: int) -> int:
        """Tokens a sequence's cache takes when it holds ``tokens``: whole blocks, and never
        fewer than a preallocated cache's ``reserved``."""
        return max(-(-tokens // self.block) * self.block, self.reserved)

    def kv_at(self, tokens: int) -> int:
        """Bytes a sequence's cache takes in memory when it holds ``tokens`` (padding and
        preallocation included)."""
        if self.paged_layers:
            return sum(layer_bytes(tokens, self.layers, self.block))
        return int(self.kv_per_sequence(self.allocated(tokens)))

    def kv_peak(self, tokens: int) -> int:
        """The most bytes a sequence's cache took at any point up to ``tokens`` (``kv_at``
        unless a paged window layer's blocks went down on the way)."""
        if self.paged_layers:
            return sum(layer_bytes(tokens, self.layers, self.block, peak=True))
        return self.kv_at(tokens)

    @property
    def kv_per_token(self) -> int:
        """Bytes one more token adds to a sequence's cache before any sliding window fills
        (2 * layers * kv_heads * head_dim * bytes for a plain transformer)."""
        return int(self.kv_per_sequence(2) - self.kv_per_sequence(1))

    @property
    def kv_sequence_bytes(self) -> int:
        """Bytes one sequence's cache takes at ``tokens`` (as allocated)."""
        return self.kv_at(self.tokens)

    @property
    def kv_held_bytes(self) -> int:
        """Bytes of the ``tokens`` one sequence's cache holds (no padding, no reserve)."""
        return int(self.kv_per_sequence(self.tokens))

    @property
    def kv_padding_bytes(self) -> int:
        """Bytes per sequence allocated but not holding a token (a paged cache's last
        block's unused slots; a preallocated cache's slots beyond ``tokens``)."""
        return self.kv_sequence_bytes - self.kv_held_bytes

    @property
    def kv_total_bytes(self) -> int:
        return self.batch * self.kv_sequence_bytes

    @property
    def activations_per_sequence(self) -> int:
        peak = max(self.prefill_activation_bytes, self.decode_activation_bytes)
        return math.ceil(peak / self.batch)

    def needed(self, batch: int, tokens: int) -> int:
        """Bytes the weights, the cache of ``batch`` sequences of ``tokens`` tokens and the
        activations take (the rule in the module docstring)."""
        per = self.kv_peak(tokens) + self.activations_per_sequence
        return self.weight_bytes + batch * per

    @property
    def total_bytes(self) -> int:
        return self.needed(self.batch, self.tokens)

    @property
    def fits(self) -> bool | None:
        return None if self.capacity is None else self.total_bytes <= self.capacity

    @property
    def max_batch(self) -> int | None:
        """The largest batch whose generation (to ``tokens``) fits; 0 when not even one."""
        if self.capacity is None:
            return None
        per = self.kv_peak(self.tokens) + self.activations_per_sequence
        room = self.capacity - self.weight_bytes
        return max(0, int(room // per)) if per else None

    @property
    def max_context(self) -> int | None:
        """The most tokens a sequence may hold at ``batch`` (prompt + new; binary search on
        the non-decreasing cache size, up to the model's maximum); 0 when not even one."""
        if self.capacity is None:
            return None
        if self.needed(self.batch, 1) > self.capacity:
            return 0
        lo, hi = 1, self.max_tokens
        if self.needed(self.batch, hi) <= self.capacity:
            return hi
        while hi - lo > 1:  # needed(lo) fits, needed(hi) does not
            mid = (lo + hi) // 2
            if self.needed(self.batch, mid) <= self.capacity:
                lo = mid
            else:
                hi = mid
        return lo

    def to_dict(self) -> dict[str, Any]:
        return {
            "weight_bytes": self.weight_bytes,
            "kv_bytes_per_token": self.kv_per_token,
            "kv_bytes_per_sequence": self.kv_sequence_bytes,
            "kv_bytes_total": self.kv_total_bytes,
            "kv_bytes_by_layer": list(self.kv_by_layer),
            "kv_bytes_held_per_sequence": self.kv_held_bytes,
            "kv_padding_bytes_per_sequence": self.kv_padding_bytes,
            "kv_padding_bytes_total": self.batch * self.kv_padding_bytes,
            "kv_block_tokens": self.block,
            "kv_reserved_tokens": self.reserved,
            "kv_peak_bytes_per_sequence": self.kv_peak(self.tokens),
            "kv_per_sequence": self.kv_per_sequence.to_dict(),
            "prefill_activation_bytes": self.prefill_activation_bytes,
            "decode_activation_bytes": self.decode_activation_bytes,
            "activation_bytes_per_sequence": self.activations_per_sequence,
            "total_bytes": self.total_bytes,
            "capacity_bytes": self.capacity,
            "chip": self.chip,
            "fits": self.fits,
            "max_batch": self.max_batch,
            "max_tokens": self.max_context,
            "tokens": self.tokens,
            "model_max_tokens": self.max_tokens,
        }


__all__ = ["GenerationMemory"]
