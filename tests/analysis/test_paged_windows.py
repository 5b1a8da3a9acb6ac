"""A paged cache's sliding-window layers: the blocks covering the tokens the layer keeps.

Rule: after T tokens a layer keeping h = min(T, cap) tokens (cap 0: all, h = T) holds the
blocks of B tokens covering positions T-h .. T-1: ceil(T/B) - floor((T-h)/B) blocks.
The tiny Mistral (window 16): its DynamicSlidingWindowLayer keeps cap = 15 tokens; 2 layers,
each 2 (K, V) x 2 heads x 16 x 4 bytes = 256 bytes per token per sequence.
"""

from __future__ import annotations

from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.paged_blocks import blocks, layer_bytes, peak_blocks
from modelmeter.analysis.polynomial import Piecewise, Polynomial

LAYERS = ((256, 15), (256, 15))


def test_window_blocks_of_16() -> None:
    # T=10: h=10, ceil(10/16) - floor(0/16) = 1 - 0 = 1
    # T=16: h=15, ceil(16/16) - floor(1/16) = 1 - 0 = 1
    # T=17: h=15, ceil(17/16) - floor(2/16) = 2 - 0 = 2 (tokens 2..16 span blocks 0 and 1)
    # T=33: h=15, ceil(33/16) - floor(18/16) = 3 - 1 = 2 (tokens 18..32: blocks 1 and 2)
    assert [blocks(t, 15, 16) for t in (10, 16, 17, 33)] == [1, 1, 2, 2]
    # T=32: tokens 17..31 lie in block 1 alone: ceil(32/16) - floor(17/16) = 2 - 1 = 1
    assert blocks(32, 15, 16) == 1
    # a full layer (cap 0): ceil(T/16): 1, 1, 2, 3
    assert [blocks(t, 0, 16) for t in (10, 16, 17, 33)] == [1, 1, 2, 3]


def test_window_blocks_of_5() -> None:
    # T=10: h=10, ceil(10/5) - floor(0/5) = 2 - 0 = 2
    # T=16: h=15, ceil(16/5) - floor(1/5) = 4 - 0 = 4 (tokens 1..15: blocks 0..3)
    # T=17: h=15, ceil(17/5) - floor(2/5) = 4 - 0 = 4
    # T=33: h=15, ceil(33/5) - floor(18/5) = 7 - 3 = 4 (tokens 18..32: blocks 3..6)
    assert [blocks(t, 15, 5) for t in (10, 16, 17, 33)] == [2, 4, 4, 4]
    # T=20: tokens 5..19 = blocks 1..3 exactly: ceil(20/5) - floor(5/5) = 4 - 1 = 3
    assert blocks(20, 15, 5) == 3
    # the most up to T: 3 at T=15 (blocks 0..2), 4 from T=16 on, also at T=20
    assert [peak_blocks(t, 15, 5) for t in (15, 16, 20)] == [3, 4, 4]


def test_layer_bytes() -> None:
    # blocks x B x 256 bytes per layer: B=16, T=17: 2 x 16 x 256 = 8,192 per layer;
    # T=32: 1 x 16 x 256 = 4,096, its peak (2 blocks at T=17) 8,192
    assert layer_bytes(17, LAYERS, 16) == (8_192, 8_192)
    assert layer_bytes(32, LAYERS, 16) == (4_096, 4_096)
    assert layer_bytes(32, LAYERS, 16, peak=True) == (8_192, 8_192)
    # B=5, T=33: 4 x 5 x 256 = 5,120 per layer
    assert layer_bytes(33, LAYERS, 5) == (5_120, 5_120)


def _memory(block: int, tokens: int, capacity: float | None = None) -> GenerationMemory:
    # held bytes per sequence: 512 per token up to 15 tokens, then 15 x 512 = 7,680
    kv = Piecewise((1, 15), (Polynomial((0, 512)), Polynomial((7_680,))))
    return GenerationMemory(1_000, kv, (0, 0), 2, tokens, 256, 0, 0, capacity=capacity,
                            chip="x", block=block, layers=LAYERS)  # fmt: skip


def test_memory_counts_window_blocks() -> None:
    m = _memory(16, 33)
    # 2 layers x 2 blocks x 16 x 256 = 16,384 per sequence; held 7,680; padding 8,704
    assert (m.kv_sequence_bytes, m.kv_held_bytes, m.kv_padding_bytes) == (16_384, 7_680, 8_704)
    assert m.kv_total_bytes == 2 * 16_384
    # T=32: 1 block per layer now (8,192), but the generation held 2 at T=17: needs 16,384
    m32 = _memory(16, 32)
    assert (m32.kv_sequence_bytes, m32.kv_peak(32)) == (8_192, 16_384)
    assert m32.total_bytes == 1_000 + 2 * 16_384
    # B=5, T=10: 2 x 2 blocks x 5 x 256 = 5,120 = 10 x 512 held: no padding
    assert (_memory(5, 10).kv_sequence_bytes, _memory(5, 10).kv_padding_bytes) == (5_120, 0)


def test_largest_batch_and_context_use_the_window_blocks() -> None:
    # room 1,000 + 10 x 16,384: batch 10 at 33 tokens (16,384 per sequence, activations 0);
    # token by token it would be 7,680 per sequence: 21 sequences
    m = _memory(16, 33, capacity=1_000 + 10 * 16_384)
    assert m.max_batch == 10
    # batch 2 with room for 2 x 8,192: one block per layer: T up to 16 fits (1 block),
    # T=17 takes 2 blocks per layer (16,384): the longest context is 16
    assert _memory(16, 33, capacity=1_000 + 2 * 8_192).max_context == 16
    # 2 x 16,384: the window never takes more than 2 blocks: every length (256) fits
    assert _memory(16, 33, capacity=1_000 + 2 * 16_384).max_context == 256
