"""A paged KV cache's memory: whole blocks of B tokens per sequence (vLLM), the last block's
unused slots counted as padding; a preallocated (static) cache's reserve. Pure: the cache
size per token is given. Expectations derived by hand below.

Llama-2-7B in fp16: 2 (K, V) x 32 layers x 32 KV heads x 128 x 2 bytes = 524,288 bytes per
token; weights 6,738,415,616 parameters x 2 bytes = 13,476,831,232 bytes.
At 2,049 tokens with blocks of 16: ceil(2049/16) = 129 blocks = 2,064 tokens:
2,064 x 524,288 = 1,082,130,432 bytes per sequence, of which 15 x 524,288 = 7,864,320 are
padding (held: 2,049 x 524,288 = 1,074,266,112).
"""

from __future__ import annotations

from modelmeter.analysis.generation_memory import GenerationMemory
from modelmeter.analysis.polynomial import Piecewise, Polynomial

PER_TOKEN = 2 * 32 * 32 * 128 * 2  # 524,288
WEIGHTS = 6_738_415_616 * 2  # 13,476,831,232
KV = Piecewise((1,), (Polynomial((0, PER_TOKEN)),))


def _memory(capacity: float, batch: int = 8, block: int = 16, reserved: int = 0) -> GenerationMemory:
    # activations 0 per sequence: the cache alone decides
    return GenerationMemory(WEIGHTS, KV, (0,), batch, 2049, 4096, 0, 0, capacity=capacity,
                            chip="x", block=block, reserved=reserved)  # fmt: skip


def test_padded_sequence() -> None:
    m = _memory(80e9)
    assert PER_TOKEN == 524_288
    assert m.allocated(2049) == 2064 and m.allocated(2048) == 2048 and m.allocated(1) == 16
    assert m.kv_sequence_bytes == 2064 * 524_288 == 1_082_130_432
    assert m.kv_held_bytes == 2049 * 524_288 == 1_074_266_112
    assert m.kv_padding_bytes == 15 * 524_288 == 7_864_320
    assert m.kv_total_bytes == 8 * 1_082_130_432
    assert m.total_bytes == WEIGHTS + 8 * 1_082_130_432
    d = m.to_dict()
    assert (d["kv_padding_bytes_total"], d["kv_block_tokens"]) == (8 * 7_864_320, 16)


def test_largest_batch_uses_the_padded_figure() -> None:
    # room for exactly 62 unpadded sequences: 62 x 1,074,266,112 = 66,604,498,944 bytes
    room = 62 * 2049 * PER_TOKEN
    m = _memory(WEIGHTS + room)
    # padded: 62 x 2,049 / 2,064 = 61.55 sequences -> 61
    assert m.max_batch == 61
    assert m.needed(61, 2049) <= m.capacity < m.needed(62, 2049)
    assert _memory(WEIGHTS + room, block=1).max_batch == 62  # token by token: 62


def test_longest_context_uses_the_padded_figure() -> None:
    # batch 1, room for 2,049 tokens exactly: 2,049 needs 2,064 slots (no), 2,048 = 128
    # whole blocks (yes)
    m = _memory(WEIGHTS + 2049 * PER_TOKEN, batch=1)
    assert m.max_context == 2048
    assert _memory(WEIGHTS + 2049 * PER_TOKEN, batch=1, block=1).max_context == 2049
    # blocks of 32: 2,048 = 64 blocks still fits, 2,049 needs 65 blocks = 2,080 slots
    assert _memory(WEIGHTS + 2079 * PER_TOKEN, batch=1, block=32).max_context == 2048


def test_preallocated_cache() -> None:
    # a static cache of 4,096 slots: 4,096 x 524,288 = 2,147,483,648 per sequence whatever it
    # holds; 4,096 - 2,049 = 2,047 slots unused
    m = _memory(80e9, block=1, reserved=4096)
    assert m.kv_sequence_bytes == 4096 * PER_TOKEN == 2_147_483_648
    assert m.kv_padding_bytes == 2047 * PER_TOKEN
    # (80e9 - 13,476,831,232) / 2,147,483,648 = 30.98 -> 30
    assert m.max_batch == 30
