"""``--cache static``: the decode step traced with transformers' own StaticCache.
Expectations derived by hand below.

Tiny Llama: hidden 64, 4 heads of 16, 2 KV heads, MLP 128, vocab 256, 2 layers, float16;
batch B = 2, prompt P = 8, G = 4 new tokens, so max_cache_len M = P + G = 12 by default.

MACs of one token: per layer q 64x64 + k 64x32 + v 64x32 + o 64x64 = 12,288 and the MLP's
3 x 64 x 128 = 24,576, so 36,864; 2 layers 73,728; the lm_head 64 x 256 = 16,384: 90,112;
x B = 180,224. Attention: QK^T and AV, 2 x 4 heads x 16 = 128 MACs per key per layer per
sequence; x 2 layers x B = 512 per key.
- A DynamicCache step at context c attends over c+1 keys: 180,224 + 512 (c+1).
- A StaticCache step attends over all M slots under a mask, whatever c is: 180,224 + 512 M
  (M = 12: 186,368 at every c; that is the dynamic step at c = M - 1; M = 40: 200,704).
KV bytes of a static step: attention reads every slot, K and V of 2 layers:
2 x 2 x B x 2 heads x M x 16 x 2 bytes = 256 B M (M = 12: 6,144); the write is index_copy_
of the new token only: 2 x 2 x B x 2 x 1 x 16 x 2 = 512 bytes, 128 per K or V per layer,
reading the 8-byte index and the 128-byte token; the write does not read the cache.
Memory: M slots per sequence from the start: 256 x M bytes (M = 40: 10,240; 28 x 256 =
7,168 of it unused after 12 tokens).
The prefill writes the zero-filled buffers (lazy initialisation: 256 B M) and its P tokens
(256 B P): at M = 12, 256 x 2 x 20 = 10,240 KV bytes written.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import one_error, run
from tiny_llama import MISTRAL_W16, config_source

from modelmeter.analysis.polynomial import Piecewise, Polynomial
from modelmeter.errors import InputError

pytest.importorskip("transformers")

from modelmeter.usecases.generate import generate  # noqa: E402

B = 2
LINEAR = B * (2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) + 64 * 256)
PER_KEY = 2 * B * 2 * 4 * 16  # 512: QK^T and AV, 2 layers, batch 2


@pytest.fixture(scope="module")
def static(tiny_llama: object) -> object:
    return generate(tiny_llama, prompt=8, new=4, batch=B, cache="static")


def test_linear_macs_derived() -> None:
    # 2 x (2 x (2 x 4,096 + 2 x 2,048 + 24,576) + 16,384) = 180,224
    assert LINEAR == 180_224 and PER_KEY == 512


def test_static_step_attends_over_max_cache_len(tiny_llama: object, static: object) -> None:
    dyn = generate(tiny_llama, prompt=8, new=4, batch=B, cache="dynamic")
    assert static.cache == "StaticCache" and static.max_cache_len == 12
    # the same cost at every context: one constant piece, 180,224 + 512 x 12
    assert static.curve.counts["macs"] == Piecewise((8,), (Polynomial((186_368,), "c"),))
    assert [static.curve.at(c).macs for c in (8, 9, 10, 11)] == [LINEAR + PER_KEY * 12] * 4
    # = the dynamic step's at c = M - 1 (attention over M = 12 keys), more than at c = 8
    assert static.first.macs == dyn.last.macs == 186_368
    assert dyn.first.macs == LINEAR + PER_KEY * 9 < static.first.macs
    # a longer cache costs more at the same context: 180,224 + 512 x 40
    long = generate(tiny_llama, prompt=8, new=4, batch=B, cache="static", max_cache_len=40)
    assert long.first.macs == long.last.macs == LINEAR + PER_KEY * 40 == 200_704


def test_static_cache_bytes(static: object) -> None:
    s = static.first
    assert s.kv_bytes_read == 256 * B * 12 == 6_144  # every slot, in attention
    assert s.kv_bytes_written == 256 * B == 512  # index_copy_ of the new token
    assert static.last == s
    assert static.prefill_counts.kv_bytes_written == 256 * B * (12 + 8) == 10_240
    writes = [r for n in static.decode.modules() for r in n.ops if "index_copy_" in r.op]
    assert len(writes) == 4  # K and V of 2 layers, counted
    for r in writes:  # the token (2 x 2 x 16 x 2 = 128 bytes) and the int64 index (8)
        assert (r.cost.bytes_written, r.cost.bytes_read, r.cost.macs) == (128, 136, 0)
    m = static.memory
    assert (m.reserved, m.kv_sequence_bytes, m.kv_padding_bytes) == (12, 12 * 256, 0)


def test_static_memory_preallocated(tiny_llama: object) -> None:
    g = generate(tiny_llama, prompt=8, new=4, batch=B, cache="static", max_cache_len=40)
    m = g.memory
    assert m.kv_sequence_bytes == 40 * 256 == 10_240
    assert m.kv_held_bytes == 12 * 256 and m.kv_padding_bytes == 28 * 256 == 7_168
    assert m.kv_by_layer == (5_120, 5_120)
    assert g.first.kv_bytes_read == 256 * B * 40


def test_inplace_keeps_the_derived_layout(tiny_llama: object, static: object) -> None:
    g = generate(tiny_llama, prompt=8, new=4, batch=B, cache="inplace")
    # attention over the c+1 filled keys, one token written; memory preallocated to 12
    assert g.first.macs == LINEAR + PER_KEY * 9
    assert (g.first.kv_bytes_read, g.first.kv_bytes_written) == (256 * B * 9, 512)
    assert g.memory.kv_sequence_bytes == static.memory.kv_sequence_bytes == 12 * 256


def test_bad_sizes(tiny_llama: object) -> None:
    with pytest.raises(InputError, match=r"max_cache_len must be a whole number >= 12"):
        generate(tiny_llama, prompt=8, new=4, cache="static", max_cache_len=11)
    with pytest.raises(InputError, match="paged cache only"):
        generate(tiny_llama, prompt=8, new=4, cache="static", block_size=16)
    with pytest.raises(InputError, match="static or inplace cache only"):
        generate(tiny_llama, prompt=8, new=4, cache="paged", max_cache_len=16)
    with pytest.raises(InputError, match="block size must be"):
        generate(tiny_llama, prompt=8, new=4, block_size=0)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--cache", "static", "--max-cache-len", "11"], "--max-cache-len: max_cache_len must"),
        (["--cache", "static", "--block-size", "16"], "--block-size: a block size applies"),
        (["--max-cache-len", "20"], "--max-cache-len: max_cache_len applies"),
        (["--block-size", "0"], "--block-size '0': must be >= 1"),
        (["--block-size", "x"], "give a whole number"),
        (["--cache", "static", "--max-cache-len", "-3"], "must be >= 1"),
    ],
)
def test_cli_bad_sizes(capsys: pytest.CaptureFixture[str], tiny_llama_path: str, argv, words) -> None:  # noqa: ANN001
    code, _, err = run(capsys, "generate", tiny_llama_path, "--prompt", "8", "--new", "4", *argv)
    assert code == 2
    assert words in one_error(err)


def test_cli_static(capsys: pytest.CaptureFixture[str], tiny_llama_path: str) -> None:
    code, out, _ = run(capsys, "generate", tiny_llama_path, "--prompt", "8", "--new", "4", "--cache",
                       "static", "--max-cache-len", "40", "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert (d["cache"], d["cache_layout"], d["max_cache_len"]) == ("StaticCache", "static", 40)
    assert d["memory"]["kv_bytes_per_sequence"] == 40 * 256


def test_static_sliding_window(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mistral-shaped, window w = 16, float32, batch 1, P = 10, G = 20 (M = 30): each
    layer's StaticSlidingWindowLayer holds min(16, 30) = 16 slots. One token, K or V, one
    layer: 2 KV heads x 16 x 4 bytes = 128; K and V of 2 layers: 512 bytes per token.
    Attention reads the 16 slots at every context (MACs constant); before the window is
    full (c < 16) index_copy_ writes the token: KV read 16 x 512 = 8,192, written 512. From
    c = 16 on the layer rolls: roll reads 16 slots and writes 16, index_put_ writes the token
    into the rolled copy, copy_ reads the 16 back and writes 16: KV read (16 + 16 + 16) x 512
    = 24,576, written (16 + 1 + 16) x 512 = 16,896."""
    source = config_source(tmp_path_factory, "mistral", MISTRAL_W16)
    g = generate(source, prompt=10, new=20, cache="static")
    dyn = generate(source, prompt=10, new=20, cache="dynamic")
    assert g.windows == (16,) and g.max_cache_len == 30
    assert g.memory.kv_sequence_bytes == 16 * 512  # the window's slots, preallocated
    kv = [(g.curve.at(c).kv_bytes_read, g.curve.at(c).kv_bytes_written) for c in (10, 15, 16, 29)]
    assert kv == [(8_192, 512), (8_192, 512), (24_576, 16_896), (24_576, 16_896)]
    # attention over 16 slots at every context: the dynamic step's once its window is full
    assert {g.curve.at(c).macs for c in range(10, 30)} == {dyn.curve.at(29).macs}


def test_static_fp8_cache_writes(tiny_llama: object) -> None:
    """An fp8 cache (1 byte per element): index_copy_ writes one token, B x 2 heads x 16 =
    64 bytes per K or V per layer, and reads the 8-byte index and the fp16 token (2 x 2 x 16
    x 2 = 128 bytes), not the cache it writes into; KV written 4 x 64 = 256, KV read in
    attention 2 x 2 x B x 2 x 12 x 16 = 3,072; 2 x 2 x 2 x 16 = 128 bytes per token."""
    g = generate(tiny_llama, prompt=8, new=4, batch=B, cache="static", kv="fp8")
    assert (g.first.kv_bytes_read, g.first.kv_bytes_written) == (3_072, 256)
    assert g.memory.kv_per_token == 128 and g.memory.kv_sequence_bytes == 12 * 128
    writes = [r for n in g.decode.modules() for r in n.ops if "index_copy_" in r.op]
    assert [(r.cost.bytes_read, r.cost.bytes_written) for r in writes] == [(136, 64)] * 4
