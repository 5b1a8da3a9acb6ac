"""A paged KV cache's blocks per layer, sliding-window layers included (pure arithmetic).

A sequence that has taken T tokens keeps, in each layer, the last h of them: h = T for a
full-attention layer, h = min(T, cap) for a sliding-window layer whose cache keeps ``cap``
tokens (transformers' ``DynamicSlidingWindowLayer`` keeps window - 1: the next token attends
to those and itself). The rule (vLLM's: a block is freed once no token the window still
needs lies in it): the layer holds the blocks of B tokens that cover positions T-h .. T-1,

    blocks(T) = ceil(T / B) - floor((T - h) / B)

which is ceil(T/B) for a full layer, and for a window layer at most ceil(cap/B) + 1 (the
window does not start on a block boundary). Memory per layer = blocks x B x the layer's
bytes per token. A window layer's count is not monotone in T (it drops by one when the
window's start crosses a block boundary): :func:`peak_blocks` is the most any T' <= T held.
"""

from __future__ import annotations

from collections.abc import Sequence


def held_tokens(tokens: int, cap: int) -> int:
    """Tokens a layer keeps after ``tokens`` (``cap`` 0: no window, all of them)."""
    return min(tokens, cap) if cap else tokens


def blocks(tokens: int, cap: int, block: int) -> int:
    """Blocks of ``block`` tokens a layer holds after ``tokens`` (the rule above)."""
    if tokens <= 0:
        return 0
    h = held_tokens(tokens, cap)
    return -(-tokens // block) - (tokens - h) // block


def peak_blocks(tokens: int, cap: int, block: int) -> int:
    """The most blocks the layer held at any T' <= ``tokens``. Up to the cap the count grows
    with T; past it, it repeats with period ``block``, so one period is enough."""
    if not cap or tokens <= cap:
        return blocks(tokens, cap, block)
    return max(blocks(t, cap, block) for t in range(cap, min(tokens, cap + block) + 1))


def layer_bytes(tokens: int, layers: Sequence[tuple[int, int]], block: int,
                peak: bool = False) -> tuple[int, ...]:  # fmt: skip
    """Bytes per sequence of each layer, ``layers`` = (bytes per token, cap) each."""
    count = peak_blocks if peak else blocks
    return tuple(count(tokens, cap, block) * block * per for per, cap in layers)


__all__ = ["held_tokens", "blocks", "peak_blocks", "layer_bytes"]
