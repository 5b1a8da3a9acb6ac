"""KV-cache layouts (dynamic, inplace, paged; the traced StaticCache: test_static_cache.py)
and the chip figures a generation is timed with.
Expectations derived by hand below.

Tiny Llama: hidden 64, 4 heads (head size 16), 2 KV heads, 2 layers, float16, batch B = 2.
One token of one sequence, K or V, one layer: 2 KV heads * 16 * 2 bytes = 64 bytes; K and V
of both layers: 4 * 64 = 256 bytes per token per sequence.

A decode step at context c, per layer and per K or V (x 4 for the model, x B sequences):
- dynamic (DynamicCache as traced): the cat reads the c cached tokens (KV storage) and the
  new one (an activation) and writes c+1 tokens (KV storage); attention reads the c+1.
  KV read = 256 B (c + (c+1)) = 256 B (2c+1); KV written = 256 B (c+1).
- inplace / paged: the write reads the new token and writes it (1 token); attention reads
  the c+1. KV read = 256 B (c+1); KV written = 256 B.
So dynamic - paged = 256 B c bytes read (the old cache the cat reads) and 256 B c bytes
written (the c old tokens it copies); MACs and FLOPs are the same (attention over c+1 keys).
At B = 2, c = 8: dynamic KV read 256*2*17 = 8,704, written 256*2*9 = 4,608; paged KV read
256*2*9 = 4,608, written 512; the difference 256*2*8 = 4,096 in bytes read and in written.
The prefill of P tokens writes P tokens in every layout (the cat appends to an empty cache:
it reads nothing cached): its counts are the same in all three.
Memory after 8 + 4 = 12 tokens: dynamic 12 x 256 per sequence; paged, blocks of 16:
ceil(12/16) x 16 = 16 tokens x 256 = 4,096 per sequence (4 slots of padding); inplace,
preallocated to prompt + new = 12 tokens: 12 x 256.
"""

from __future__ import annotations

import pytest
from cli_helpers import one_error, run
from tiny_llama import MISTRAL_W16, config_source

from modelmeter.analysis.cache_layout import LAYOUTS, served
from modelmeter.analysis.polynomial import Polynomial
from modelmeter.errors import InputError
from modelmeter.render.generation import generation_table

pytest.importorskip("transformers")

from modelmeter.frontends.torch.kvcache import trace_phase  # noqa: E402
from modelmeter.usecases.generate import generate  # noqa: E402

TOKEN = 4 * 2 * 16 * 2  # K and V of 2 layers: 256 bytes per token per sequence
B = 2


@pytest.fixture(scope="module")
def runs(tiny_llama: object) -> dict[str, object]:
    return {c: generate(tiny_llama, prompt=8, new=4, batch=B, hardware="h100-sxm", cache=c)
            for c in LAYOUTS}  # fmt: skip


def test_one_decode_step_by_layout(runs: dict) -> None:
    d, s, p = (runs[c].first for c in ("dynamic", "inplace", "paged"))  # context c = 8
    assert (d.kv_bytes_read, d.kv_bytes_written) == (TOKEN * B * 17, TOKEN * B * 9) == (8704, 4608)
    assert (p.kv_bytes_read, p.kv_bytes_written) == (TOKEN * B * 9, TOKEN * B) == (4608, 512)
    assert s == p  # the same bytes: the new token written in place, the cache read once
    assert d.bytes_read - p.bytes_read == TOKEN * B * 8 == 4096
    assert d.bytes_written - p.bytes_written == TOKEN * B * 8 == 4096
    assert (d.macs, d.flops, d.weight_bytes) == (p.macs, p.flops, p.weight_bytes)


def test_curves_by_layout(runs: dict) -> None:
    d, p = runs["dynamic"].curve.counts, runs["paged"].curve.counts
    # KV written per step: 256 B (c+1) for the cat, 256 B for a paged write (no c in it)
    assert d["kv_bytes_written"].pieces == (Polynomial((TOKEN * B, TOKEN * B), "c"),)
    assert p["kv_bytes_written"].pieces == (Polynomial((TOKEN * B,), "c"),)
    # KV read: 256 B (2c+1) against 256 B (c+1)
    assert d["kv_bytes_read"].pieces == (Polynomial((TOKEN * B, 2 * TOKEN * B), "c"),)
    assert p["kv_bytes_read"].pieces == (Polynomial((TOKEN * B, TOKEN * B), "c"),)
    for c in (8, 11, 300):  # the bytes the cat copies: 256 B c each way
        assert d["bytes_read"](c) - p["bytes_read"](c) == TOKEN * B * c
        assert d["bytes_written"](c) - p["bytes_written"](c) == TOKEN * B * c
    assert d["macs"] == p["macs"] and d["flops"] == p["flops"]


def test_prefill_and_memory_do_not_change(runs: dict) -> None:
    d, p = runs["dynamic"], runs["paged"]
    # 8 tokens x batch 2 x 256 bytes = 4,096 written by the prefill, read by its attention
    assert p.prefill_counts == d.prefill_counts
    assert p.prefill_counts.kv_bytes_written == 8 * B * TOKEN == 4096
    assert d.memory.kv_total_bytes == runs["inplace"].memory.kv_total_bytes == B * 12 * TOKEN
    assert p.memory.kv_total_bytes == B * 16 * TOKEN == 8192  # whole blocks of 16 tokens
    assert p.memory.kv_held_bytes == 12 * TOKEN and p.memory.kv_padding_bytes == 4 * TOKEN


def test_served_rewrites_only_the_appends(tiny_llama: object) -> None:
    pre = trace_phase(tiny_llama, batch=B, tokens=8)
    d = trace_phase(tiny_llama, batch=B, tokens=1, context=8, template=pre.layers)
    paged = served(d.trace, "paged")
    assert served(d.trace, "dynamic") is d.trace
    changed = [(a, b) for a, b in zip(d.trace.events, paged.events) if a is not b]
    assert len(changed) == 2 * 2  # K and V of 2 layers
    for old, new in changed:
        assert old.target == new.target == "cat"
        assert [t.shape for t in old.call.inputs] == [(B, 2, 8, 16), (B, 2, 1, 16)]
        assert [t.shape for t in new.call.inputs] == [(B, 2, 1, 16)]
        assert [(t.shape, t.kv) for t in new.call.outputs] == [((B, 2, 1, 16), True)]


def test_sliding_window_paged(tmp_path_factory: pytest.TempPathFactory) -> None:
    source = config_source(tmp_path_factory, "mistral", MISTRAL_W16)
    g = generate(source, prompt=10, new=20, cache="paged")
    d = generate(source, prompt=10, new=20, cache="dynamic")
    # float32, batch 1: 2 (K, V) * 2 layers * 2 heads * 16 * 4 = 512 bytes per token. Paged
    # writes one token per step at every context; attention reads min(c, 15) + 1 tokens
    kv = g.curve.counts
    assert [kv["kv_bytes_written"](c) for c in (10, 15, 16, 29)] == [512] * 4
    assert [kv["kv_bytes_read"](c) for c in (10, 14, 15, 29)] == [11 * 512, 15 * 512, 16 * 512, 16 * 512]
    # the dynamic cat reads min(c, 15) cached tokens more
    assert d.curve.counts["kv_bytes_read"](29) - kv["kv_bytes_read"](29) == 15 * 512
    assert d.curve.counts["macs"] == kv["macs"]


def test_layout_in_result(runs: dict) -> None:
    d = runs["paged"].to_dict()
    assert (d["cache"], d["cache_layout"]) == ("DynamicCache", "paged")
    assert any("paged cache" in n for n in d["notes"])
    assert runs["static"].layout == "static" and runs["static"].cache == "StaticCache"
    assert runs["inplace"].to_dict()["max_cache_len"] == 12 and d["cache_block_size"] == 16
    with pytest.raises(InputError, match="cache layout"):
        generate("hf:llama-2-7b", prompt=4, new=2, cache="ring")


def test_default_is_paged(tiny_llama: object, runs: dict) -> None:
    g = generate(tiny_llama, prompt=8, new=4, batch=B)
    assert g.layout == "paged" and g.first == runs["paged"].first


def test_ideal_faster_than_attainable(runs: dict, tiny_llama: object) -> None:
    """--ideal prices the datasheet roofline of h100-sxm: every ceiling at least as high as
    the attainable one the default uses (matrix float16 989.5T >= 766.3T, vector 133.8T >=
    5.857T, memory 3.35 >= 3.004 TB/s) and its overheads no larger (the datasheet's 4 us per
    op, no launch time, against the fitted eager host time + 6 us launch); a step's time is
    a sum of max(compute, memory) + overhead terms, each no larger, so it is no larger. The
    tiny model is overhead-bound: its decode step is about 101 ops x 4 us = 404 us."""
    ideal = generate(tiny_llama, prompt=8, new=4, batch=B, hardware="h100-sxm",
                     roofline_options={"ideal": True})  # fmt: skip
    default = runs["paged"]
    t, u = ideal.timing, default.timing
    assert (t.figures, u.figures) == ("ideal", "attainable")
    assert t.decode_first_s <= u.decode_first_s and t.decode_mean_s <= u.decode_mean_s
    assert t.ttft_s <= u.ttft_s
    ops = sum(len(n.ops) for n in ideal.decode.modules())
    assert ops == 101
    assert t.decode_first_s == pytest.approx(ops * 4e-6, rel=1e-3)


def test_runtime_graphs(tiny_llama: object, runs: dict) -> None:
    g = generate(tiny_llama, prompt=8, new=4, batch=B, hardware="h100-sxm",
                 roofline_options={"runtime": "graphs"})  # fmt: skip
    assert g.timing.runtime == "graphs"
    assert g.timing.decode_first_s <= runs["paged"].timing.decode_first_s


def test_cli_cache_ideal_runtime(capsys: pytest.CaptureFixture[str], tiny_llama_path: str) -> None:
    expect = {"--cache": "dynamic KV cache", "--ideal": "ideal figures, eager runtime",
              "--runtime": "attainable figures, graphs runtime"}  # fmt: skip
    for extra in (["--cache", "dynamic"], ["--ideal"], ["--runtime", "graphs"]):
        code, out, _ = run(capsys, "generate", tiny_llama_path, "--prompt", "8", "--new", "4",
                           "--hardware", "h100-sxm", *extra)  # fmt: skip
        assert code == 0 and expect[extra[0]] in out, (extra, out)
    code, _, err = run(capsys, "generate", tiny_llama_path, "--prompt", "8", "--new", "4", "--cache", "ring")
    assert code == 2 and "--cache" in one_error(err)


def test_block_size_changes_memory_only(tiny_llama: object, runs: dict) -> None:
    # blocks of 32: ceil(12/32) = 1 block = 32 tokens x 256 = 8,192 bytes per sequence (20
    # slots of padding, 5,120 bytes); the decode step reads the filled tokens only: the same
    # step as with blocks of 16
    g = generate(tiny_llama, prompt=8, new=4, batch=B, block_size=32)
    assert g.curve.counts == runs["paged"].curve.counts
    assert g.memory.kv_sequence_bytes == 32 * TOKEN == 8192
    assert g.memory.kv_padding_bytes == 20 * TOKEN == 5120
    assert g.to_dict()["memory"]["kv_padding_bytes_total"] == B * 5120


@pytest.mark.parametrize(("block", "sizes"), [
    # window 16: the layer keeps cap = 15 tokens; 256 bytes per token per layer (float32,
    # 2 (K, V) x 2 heads x 16 x 4). Blocks covering tokens T-h .. T-1, h = min(T, 15):
    # B=16: T=10: 1 - 0 = 1; T=16: 1 - floor(1/16) = 1; T=17: 2 - floor(2/16) = 2;
    #       T=33: 3 - floor(18/16) = 2  -> x 16 x 256 = 4,096, 4,096, 8,192, 8,192 per layer
    (16, (4_096, 4_096, 8_192, 8_192)),
    # B=5:  T=10: 2 - 0 = 2; T=16: 4 - floor(1/5) = 4; T=17: 4 - floor(2/5) = 4;
    #       T=33: 7 - floor(18/5) = 4   -> x 5 x 256 = 2,560, 5,120, 5,120, 5,120 per layer
    (5, (2_560, 5_120, 5_120, 5_120)),
])  # fmt: skip
def test_paged_window_blocks(tmp_path_factory: pytest.TempPathFactory, block: int,
                             sizes: tuple[int, ...]) -> None:  # fmt: skip
    source = config_source(tmp_path_factory, "mistral", MISTRAL_W16)
    g = generate(source, prompt=32, new=1, cache="paged", block_size=block)
    m = g.memory
    assert m.layers == ((256, 15), (256, 15))  # read from the model's cache
    assert [m.kv_at(t) for t in (10, 16, 17, 33)] == [2 * s for s in sizes]
    # at T = 33 each layer holds 15 tokens (3,840 bytes); the rest of its blocks is padding
    assert m.kv_by_layer == (sizes[-1], sizes[-1])
    assert m.kv_held_bytes == 2 * 15 * 256 == 7_680
    assert m.kv_padding_bytes == 2 * sizes[-1] - 7_680
    # the decode step still reads the window's filled tokens only: min(c, 15) + 1 at c=32
    assert g.curve.counts["kv_bytes_read"](32) == 16 * 512
    # padding in tokens' worth of both layers (512 bytes): B=16: 8,704 / 512 = 17; B=5:
    # 2,560 / 512 = 5
    worth = (2 * sizes[-1] - 7_680) // 512
    assert f"({worth} tokens' worth per sequence)" in generation_table(g)


def test_paged_window_peak(tmp_path_factory: pytest.TempPathFactory) -> None:
    # T = 32, B = 16: tokens 17..31 lie in block 1 alone: 1 block per layer, 2 x 16 x 256 =
    # 8,192 per sequence now; at T = 17 it held 2 blocks per layer (16,384): the total uses that
    source = config_source(tmp_path_factory, "mistral", MISTRAL_W16)
    g = generate(source, prompt=31, new=1, hardware="h100-sxm")
    m = g.memory
    assert (m.kv_sequence_bytes, m.kv_peak(32)) == (8_192, 16_384)
    assert m.total_bytes == m.weight_bytes + m.activations_per_sequence + 16_384
    # held 2 x 15 x 256 = 7,680: padding 512 = 1 token's worth
    assert "(1 token's worth per sequence); up to 16.38 KB per sequence earlier" in generation_table(g)
