"""``generate(..., fuse=RULES)``: the generation priced with its kernels fused
(analysis/generation_fusion.py), beside the unfused figures.

The tiny Llama of tests/tiny_llama.py (float32; hidden 64, 4 heads of 16, 2 KV heads, MLP
128, vocab 256, 2 layers), batch 1, prompt 8, decode step at context 8 (9 keys). Its decode
step (sdpa attention, as the loader builds it) runs 89 ops, in run order:

* top (10): embedding; arange, add; rotary: _to_copy, mul, cat, cos, mul, sin, mul;
* per layer (36): input norm pow, mean, add, rsqrt, mul, mul (6); q, k, v mm (3); rotary of
  q: mul, neg, cat, mul, add (5) and of k the same (5); 2 cats (the cache); sdpa (1);
  o_proj mm, residual add (2); post norm (6); gate mm, silu, up mm, mul, down mm, add (6);
* final norm (6) and lm_head (1): 10 + 2 x 36 + 7 = 89.

The earlier rules (elementwise, conv-bn-act, attention): the elementwise rule joins an
elementwise op to the kernel before it when it reads that kernel's output (by storage id, as
its first or a largest input). Kernels left:

* top: embedding | arange+add | _to_copy+mul | cat+cos+mul | sin+mul = 5 (sin reads the
  cat's output, not the mul's: by size alone it would join);
* layer 0: pow | mean+add+rsqrt | mul+mul (3); q | k | v (3); mul | neg | cat+mul+add for q
  and for k (6); cat | cat (2); sdpa (1); o_proj+add (1); pow joins that add, so post norm
  is mean+add+rsqrt | mul+mul (2); gate+silu | up+mul | down+add (3): 21;
* layer 1: the same but its pow joins layer 0's last add: 20;
* final norm: its pow joins the last add: 2; lm_head: 1.

5 + 21 + 20 + 2 + 1 = 49 kernels. Each join saves the intermediate twice (written by the
kernel so far, read by the joining op), bytes = its output's elements x 4:

* top: add 8, mul 4, cos 64, mul 64, mul 64 -> 2 x 204 = 408;
* layer 0: norm add 4, rsqrt 4, weight mul 256; rotary q mul, add 256 + 256; rotary k
  128 + 128; residual add 256; post norm pow 256, add 4, rsqrt 4, mul 256; silu 512, mul
  512, residual add 256 -> 2 x 3,088 = 6,176;
* layer 1: the same plus its pow 256 -> 6,176 + 512 = 6,688;
* final norm: pow 256, add 4, rsqrt 4, mul 256 -> 2 x 520 = 1,040.

408 + 6,176 + 6,688 + 1,040 = 14,312 bytes fewer than the unfused step's 404,584 (387,352
read + 17,232 written, the decode Report's totals): 390,272. Intermediates an op after their
kernel reads are written all the same: the cat's output (64, which sin reads) and the 4
residual adds' outputs (the residual stream, 256 each: each add's kernel is joined by the
next norm's pow, and the norm's normalising mul and the next residual add read the stream
outside it): 64 + 4 x 256 = 1,088 -> 391,360.

All rules (``all``) add cast, reduction and rotary. Kernels:

* top: the _to_copy (int64 -> float32 position, 8 bytes read) joins arange+add (cast):
  embedding | arange+add+_to_copy+mul | cat+cos+mul | sin+mul = 4;
* every norm is one kernel: mean joins pow (reduction: a reduction after a pointwise op),
  add and rsqrt read its result, the normalising mul reads rsqrt's (x, its other input, on
  chip), the weight mul the mul's;
* each rotary (q, k) is one kernel: mul | neg+cat+mul+add joined (rotary);
* layer 0: norm (1); q | k | v (3); rotary q, k (2); cat | cat (2); sdpa (1);
  o_proj+add+post norm (1); gate+silu | up+mul | down+add+layer 1's norm (3): 13;
* layer 1: 12 (its input norm is in layer 0's down kernel); the final norm joins layer 1's
  down kernel; lm_head 1: 4 + 13 + 12 + 1 = 30 kernels.

Bytes beyond the earlier rules' joins:

* the cast reads add's 8-byte output on chip: 2 x 8 = 16;
* per norm (5: two per layer and the final one): mean reads pow's output on chip, 2 x 256;
  the normalising mul reads rsqrt's, 2 x 4, and x on chip (already unwritten), 256: 776;
  5 x 776 = 3,880;
* per rotary of a tensor of Q bytes: the neg reads half of the q the mul read (Q / 2), the
  cat reads -x2 (Q / 2, on chip, unwritten: 2 x Q / 2) and x1 (Q / 2, half of q again), the
  add reads q * cos (2 x Q): 4 Q; q: Q = 4 heads x 16 x 4 = 256 -> 1,024, k: 128 -> 512;
  2 layers x 1,536 = 3,072.

16 + 3,880 + 3,072 = 6,968 fewer than 391,360, less the residual writes the earlier rules kept
that the norm now reads inside the kernel: the last add's (the final norm's mul reads it on
chip, nothing after): 256 -> 391,360 - 6,968 - 256 = 384,136 (3 residual adds and the cat
still written).
"""

from __future__ import annotations

import pytest
from tiny_llama import TINY_LLAMA, load_model

from modelmeter.analysis.fusion import fusion_plan
from modelmeter.errors import InputError

pytest.importorskip("transformers")

from modelmeter.usecases.generate import generate  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_model(tmp_path_factory, "tiny", TINY_LLAMA)


@pytest.fixture(scope="module")
def fused(tiny: object) -> object:
    return generate(tiny, prompt=8, new=4, hardware="h100-sxm", fuse="all")


def test_decode_step_kernels_and_bytes(fused: object) -> None:
    f = fused.fusion
    assert f.rules == ("elementwise", "conv-bn-act", "attention", "cast", "reduction", "rotary")
    c = fused.decode.total().cost
    assert (c.bytes_read, c.bytes_written) == (387_352, 17_232)
    assert f.decode_kernels == 89 and f.decode_kernels_fused == 30
    assert f.decode_bytes == 404_584
    assert f.decode_bytes_fused == 391_360 - 6_968 - 256 == 384_136


def test_decode_step_under_the_earlier_rules(tiny: object) -> None:
    r = generate(tiny, prompt=8, new=4, fuse="elementwise,conv-bn-act,attention")
    f = r.fusion
    assert f.decode_kernels_fused == 49
    assert f.decode_bytes_fused == 404_584 - 14_312 + 64 + 4 * 256 == 391_360


def test_fused_times_not_above_unfused(fused: object) -> None:
    t, u = fused.fusion.timing, fused.timing
    assert t.ttft_s <= u.ttft_s and t.decode_first_s <= u.decode_first_s
    assert t.decode_total_s <= u.decode_total_s and t.tokens_per_s >= u.tokens_per_s
    # 59 kernels fewer per step, each with an eager launch: strictly faster
    assert t.decode_first_s < u.decode_first_s


def test_no_rules_is_the_unfused_pricing(tiny: object, fused: object) -> None:
    none = generate(tiny, prompt=8, new=4, hardware="h100-sxm", fuse="none")
    f = none.fusion
    assert f.rules == () and f.decode_kernels_fused == f.decode_kernels == 89
    assert f.timing == none.timing  # the plan of no joins replays the Reports as they are


def test_default_is_unchanged(tiny: object, fused: object) -> None:
    plain = generate(tiny, prompt=8, new=4, hardware="h100-sxm")
    assert plain.fusion is None and "fusion" not in plain.to_dict()
    assert plain.timing == fused.timing and plain.memory == fused.memory
    assert fused.to_dict()["fusion"]["decode_step_first"]["kernels"] == [89, 30]


def test_fused_exact_sum_equals_every_context(tiny: object) -> None:
    """The fused decode total from 2 seeds (closed-form sums between them) equals the one
    evaluated at every one of the 6 contexts: fused counts stay linear in the context."""
    few = generate(tiny, prompt=8, new=6, hardware="h100-sxm", fuse="all", samples=2,
                   roofline_options={"runtime": "graphs"})  # fmt: skip
    every = generate(tiny, prompt=8, new=6, hardware="h100-sxm", fuse="all", samples=17,
                     roofline_options={"runtime": "graphs"})  # fmt: skip
    assert every.fusion.timing.every_context
    assert few.fusion.timing.decode_total_s == pytest.approx(every.fusion.timing.decode_total_s,
                                                             rel=1e-12)  # fmt: skip


def test_attention_rule_on_eager_attention(tiny: object) -> None:
    """Eager attention: per layer bmm (Q K^T, scores 4 heads x 1 x 9 keys x 4 bytes = 144),
    mul (scale), add (mask), softmax, bmm (x V, output 4 x 1 x 16 x 4 = 256). One kernel:
    reads 2,560 + 144 + 180 + 144 + 2,448 - 4 x 144 = 4,900 bytes (Q, K, V and the mask),
    writes 144 x 4 + 256 - 4 x 144 = 256 (the output alone): 4 kernels fewer per layer."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**{k: v for k, v in TINY_LLAMA.items()
                         if k not in ("model_type", "architectures")})  # fmt: skip
    with torch.device("meta"):
        eager = LlamaForCausalLM._from_config(cfg, attn_implementation="eager")
    r = generate(eager, prompt=8, new=4, hardware="h100-sxm", fuse="attention")
    report = fusion_plan(r.decode, ("attention",)).apply(r.decode)
    attn = [rec for n in report.modules() if n.name == "model.layers.0.self_attn"
            for rec in n.ops if rec.op == "aten.bmm"]  # fmt: skip
    assert len(attn) == 1
    assert (attn[0].cost.bytes_read, attn[0].cost.bytes_written) == (4_900, 256)
    f = r.fusion
    assert f.decode_kernels - f.decode_kernels_fused == 2 * 4  # 2 layers
    assert f.decode_bytes - f.decode_bytes_fused == 2 * 2 * 4 * 144
    assert f.timing.ttft_s <= r.timing.ttft_s


def test_with_tensor_parallel_and_formats(tiny: object) -> None:
    """--tp 2 with int8 weights, an fp8 cache and CUDA graphs: the same plan replayed on
    one device's Reports (the kernels the plan makes of the traced, whole-replica step: a
    static cache and int8 weights run other ops than above), fused not slower, the
    communication in both."""
    kw = {"prompt": 8, "new": 4, "hardware": "h100-sxm", "tensor_parallel": 2,
          "weights": "int8", "kv": "fp8", "roofline_options": {"runtime": "graphs"},
          "cache": "static"}  # fmt: skip
    r = generate(tiny, fuse="all", **kw)
    f = r.fusion
    assert r.tensor_parallel is not None
    assert f.decode_kernels == sum(len(n.ops) for n in r.decode.modules())
    assert f.decode_kernels_fused == fusion_plan(r.decode).kernels < f.decode_kernels
    assert f.decode_bytes_fused < f.decode_bytes
    assert f.timing.ttft_s <= r.timing.ttft_s
    assert f.timing.decode_total_s <= r.timing.decode_total_s
    assert any("communication" in n for n in f.timing.notes)


@pytest.mark.parametrize("bad", ["bogus", "elementwise,nope", ["attention", "x"]])
def test_bad_rules(tiny: object, bad: object) -> None:
    with pytest.raises(InputError, match="unknown fusion rule"):
        generate(tiny, prompt=8, new=4, fuse=bad)


def test_sliding_window_pieces(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mistral with a window of 16 over contexts 10 .. 23: pieces cut at the window's breaks
    (the decode step runs other ops past them), a plan per piece; the fused total from 2
    seeds equals the every-context one, and each piece's plan fuses as its other traced
    contexts do (no note)."""
    from tiny_llama import MISTRAL_W16

    mistral = load_model(tmp_path_factory, "mistral", MISTRAL_W16)
    runs = [generate(mistral, prompt=10, new=14, hardware="h100-sxm", fuse="all",
                     samples=s, roofline_options={"runtime": "graphs"}) for s in (2, 17)]  # fmt: skip
    assert len(runs[0].curve.counts["macs"].starts) > 1
    assert runs[1].fusion.timing.every_context and runs[0].fusion.notes == ()
    assert runs[0].fusion.timing.decode_total_s == pytest.approx(
        runs[1].fusion.timing.decode_total_s, rel=1e-12)
    assert runs[0].fusion.timing.decode_total_s < runs[0].timing.decode_total_s
