"""A decode step's attention as its own kernel class, ``attention-decode`` (analysis/kernels.py;
docs/hardware.md, "Decode attention"): the shape rule on hand-made shapes, its fallback to
``attention``'s figures, and one roofline time derived by hand."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import modelmeter
from modelmeter.analysis.kernels import (
    DECODE,
    DECODE_QUERY_MAX,
    attention_lengths,
    is_decode,
    kernel_class,
    record_class,
)
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import HardwareSpec, dump_toml, load_spec, spec_from_dict
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"  # what a CPU / meta trace records


def one_op(rec: OpRecord) -> Report:
    root = ModuleNode("", "Fn", calls=1, ops=[rec])
    return Report("fn", "torch", "exact", "meta", [InputSpec((1,), rec.dtype)], root)


# ---- the shape rule ------------------------------------------------------------------------


def test_one_query_token_against_a_cache_is_decode() -> None:
    # SDPA's (B, H, L, E): q (2, 32, 1, 128) against k, v (2, 32, 512, 128): 1 query token,
    # 512 keys per sequence -> decode
    decode = [(2, 32, 1, 128), (2, 32, 512, 128), (2, 32, 512, 128)]
    assert attention_lengths(SDPA, decode) == (1, 512)
    assert kernel_class("attention", decode, op=SDPA) == DECODE
    # the prefill of the same cache: q = k = 512 tokens -> the fused attention kernel
    prefill = [(2, 32, 512, 128)] * 3
    assert kernel_class("attention", prefill, op=SDPA) == "attention"
    # without the op's key the layout is unknown: attention, as before
    assert kernel_class("attention", decode) == "attention"


def test_gqa_reads_the_sequence_dimensions_not_the_heads() -> None:
    # Llama-3-8B: 32 query heads, 8 key/value heads. Decode: q (4, 32, 1, 128), k (4, 8, 2048,
    # 128) -> 1 vs 2048; prefill q (4, 32, 2048, 128) -> 2048 vs 2048
    k = (4, 8, 2048, 128)
    assert attention_lengths(SDPA, [(4, 32, 1, 128), k, k]) == (1, 2048)
    assert is_decode(SDPA, [(4, 32, 1, 128), k, k])
    assert not is_decode(SDPA, [(4, 32, 2048, 128), k, k])
    # the kernels under SDPA on CUDA take the same layout (a bool mask as a fourth input)
    for op in ("aten._scaled_dot_product_efficient_attention",
               "aten._scaled_dot_product_cudnn_attention",
               "aten._scaled_dot_product_flash_attention", "aten._cudnn_attention_forward"):
        assert is_decode(op, [(4, 32, 1, 128), k, k, (4, 1, 1, 2048)]), op


def test_the_query_threshold() -> None:
    k = (1, 8, 512, 128)
    # 16 query tokens (a speculative step's verification) against 512 keys: decode; 17: not
    assert DECODE_QUERY_MAX == 16
    assert is_decode(SDPA, [(1, 32, 16, 128), k, k])
    assert not is_decode(SDPA, [(1, 32, 17, 128), k, k])
    # 16 queries on 16 keys is the prefill of a 16-token prompt: no cache beyond the query
    assert not is_decode(SDPA, [(1, 32, 16, 128), (1, 8, 16, 128), (1, 8, 16, 128)])
    # one token on one key (the prefill of a 1-token prompt): not decode either
    assert not is_decode(SDPA, [(1, 32, 1, 128), (1, 8, 1, 128), (1, 8, 1, 128)])


def test_sequence_first_and_variable_length_kernels() -> None:
    flash = "aten._flash_attention_forward"
    # (B, L, H, E): q (2, 1, 32, 128), k (2, 512, 8, 128) -> 1 vs 512 (read as SDPA's layout
    # it would be 32 vs 8)
    assert attention_lengths(flash, [(2, 1, 32, 128), (2, 512, 8, 128), (2, 512, 8, 128)]) \
        == (1, 512)
    # variable length: 4 sequences (offsets of 5 entries) of 4 query tokens in all and 4096
    # keys in all -> 4 / 4 = 1 query token vs 4096 / 4 = 1024 keys per sequence: decode
    q, k, offsets = (4, 32, 128), (4096, 8, 128), (5,)
    assert attention_lengths(flash, [q, k, k, offsets, offsets]) == (1, 1024)
    assert is_decode(flash, [q, k, k, offsets, offsets])
    # the same batch's prefill: 4096 query tokens in all -> 1024 vs 1024
    assert not is_decode(flash, [k[:1] + (32, 128), k, k, offsets, offsets])
    # the efficient kernel's variable-length batch is (1, total, H, E), a bias may come first
    eff = "aten._efficient_attention_forward"
    assert attention_lengths(eff, [(1, 4, 32, 128), (1, 4096, 8, 128), (1, 4096, 8, 128),
                                   offsets, offsets]) == (1, 1024)


def test_other_attention_ops_stay_attention() -> None:
    k = (1, 8, 512, 128)
    # the backward of a decode-shaped call, and nn.MultiheadAttention's fused block
    for op in ("aten._scaled_dot_product_flash_attention_for_cpu_backward",
               "aten._native_multi_head_attention", "aten.mm"):
        assert attention_lengths(op, [(1, 32, 1, 128), k, k]) is None
    assert kernel_class("attention", [(1, 1, 64), (1, 512, 64), (1, 512, 64)],
                        op="aten._native_multi_head_attention") == "attention"


class _DecodeStep(torch.nn.Module):
    """One query token of 4 heads attending to a cache of 64 keys in 2 key/value heads."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("k", torch.randn(1, 2, 64, 16))
        self.register_buffer("v", torch.randn(1, 2, 64, 16))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, self.k, self.v,
                                                                enable_gqa=True)


def test_a_traced_decode_step_and_prefill() -> None:
    # q (1, 4, 1, 16) against k, v (1, 2, 64, 16): decode; q (1, 4, 64, 16): prefill-shaped
    for query, expected in (("1x4x1x16", DECODE), ("1x4x64x16", "attention")):
        r = modelmeter.analyze(_DecodeStep().eval(), query)
        recs = [rec for n in r.modules() for rec in n.ops if "attention" in rec.op]
        assert [record_class(rec) for rec in recs] == [expected], query


def test_the_profiler_classifies_with_the_same_rule() -> None:
    from modelmeter.frontends.torch.profiling import classify

    # torch.profiler records every argument's shape ([] for a scalar or None)
    node = SimpleNamespace(name="aten::_scaled_dot_product_flash_attention_for_cpu",
                           input_shapes=[[1, 32, 1, 128], [1, 8, 512, 128], [1, 8, 512, 128],
                                         [], []], cpu_children=[], overload_name="")
    assert classify(node) == DECODE
    node.input_shapes = [[1, 32, 512, 128], [1, 8, 512, 128], [1, 8, 512, 128], [], []]
    assert classify(node) == "attention"


# ---- the figures ---------------------------------------------------------------------------


def toy(**kw: Any) -> HardwareSpec:
    base: dict[str, Any] = dict(name="toy", display_name="Toy", vendor="-", kind="gpu",
                                bandwidth=1e12, compute={"bfloat16": 100e12})
    base.update(kw)
    return HardwareSpec(**base)


def test_without_its_own_figure_decode_takes_attentions() -> None:
    # a user or calibrated file naming only attention prices decode attention the same
    spec = toy(kernel_efficiency={"attention": 0.3})
    assert spec.kernel_factors(DECODE, "bfloat16") == (0.3, 0.3)
    # attention's own per-dtype figure, too
    per_dtype = toy(kernel_efficiency={"attention": 0.3},
                    dtype_kernels={"bfloat16": {"attention": (0.2, 0.4)}})
    assert per_dtype.kernel_factors(DECODE, "bfloat16") == (0.2, 0.4)
    assert per_dtype.kernel_factors(DECODE, "float32") == (0.3, 0.3)
    # its own figure wins; a file naming neither prices both at the roofline
    own = toy(kernel_efficiency={"attention": 0.3, DECODE: 0.3}, kernel_memory={DECODE: 0.9})
    assert own.kernel_factors(DECODE, "bfloat16") == (0.3, 0.9)
    assert toy().kernel_factors(DECODE) == (1.0, 1.0)


def test_a_file_may_name_the_class() -> None:
    doc: dict[str, Any] = {
        "name": "x", "vendor": "v", "kind": "gpu", "memory": {"bandwidth": "1T"},
        "compute": {"bfloat16": "100T"},
        "efficiency": {"kernels": {"attention": 0.3,
                                   "attention-decode": {"compute": 0.3, "memory": 0.95}}},
    }  # fmt: skip
    spec = spec_from_dict(doc)
    assert spec.kernel_factors(DECODE, "bfloat16") == (0.3, 0.95)
    again = spec_from_dict(tomllib.loads(dump_toml(spec)))
    assert again.kernel_factors(DECODE, "bfloat16") == (0.3, 0.95)


def test_h100_and_the_chips_carrying_its_figures() -> None:
    for name in ("h100-sxm", "h200", "a100-sxm-80gb"):
        spec = load_spec(name)
        attained = spec.attained()  # the attainable figures predictions use by default
        assert attained.kernel_factors(DECODE, "bfloat16") == (0.3, 1.0), name
        assert attained.kernel_factors("attention", "bfloat16") == (0.3, 0.3), name
        # --ideal: every efficiency 1.0
        assert spec.ideal().kernel_factors(DECODE, "bfloat16") == (1.0, 1.0)


def test_decode_attention_roofline_by_hand() -> None:
    # One Llama-3-8B layer's decode attention at batch 32, context 4096 (+1 new token), bf16,
    # on h100-sxm: K and V read 2 x 32 x 8 x 4097 x 128 x 2 bytes = 537,001,984; q read and
    # the output written 32 x 32 x 128 x 2 = 262,144 bytes each; 537,526,272 bytes in all.
    #   memory:  537,526,272 / (3.004e12 x 1.0) = 1.789368e-4 s  (attention's 0.3: 5.96456e-4 s)
    #   compute: 2,168,851,456 FLOPs / (795.9e12 x 0.3) = 9.0834e-6 s: memory-bound, 3.33x less
    kv, q = 2 * 32 * 8 * 4097 * 128 * 2, 32 * 32 * 128 * 2
    rec = OpRecord(SDPA, Cost(macs=1_074_003_968, flops=2_168_851_456, bytes_read=kv + q,
                              bytes_written=q),
                   dtype="bfloat16",
                   shapes=((32, 32, 1, 128), (32, 8, 4097, 128), (32, 8, 4097, 128)))
    spec = load_spec("h100-sxm")
    (t,) = roofline(one_op(rec), spec, runtime="graphs").ops
    assert t.kernel_class == DECODE and t.bound == "memory"
    assert t.memory_s == pytest.approx(1.789368e-4, rel=1e-6)
    assert t.compute_s == pytest.approx(9.0834e-6, rel=1e-4)
    # the same op priced as the fused attention kernel (the class before): 0.3 of 3.004 TB/s
    as_before = toy(bandwidth=3.004e12, compute={"bfloat16": 795.9e12},
                    kernel_efficiency={"attention": 0.3})
    (t0,) = roofline(one_op(rec), as_before, runtime="graphs").ops
    assert t0.memory_s == pytest.approx(5.96456e-4, rel=1e-5)


def test_measure_per_class_profiles_decode_attention_as_the_analysis_does() -> None:
    from modelmeter.render.measure import render_measure
    from modelmeter.usecases.measure import measure

    cpu = HardwareSpec(name="toy-cpu", display_name="toy", vendor="-", kind="cpu",
                       bandwidth=1e10, compute={"float32": 1e11}, vector={"float32": 1e10})
    r = measure(_DecodeStep().eval(), "1x4x1x16", warmup=1, repeats=2, per_class=True,
                hardware=cpu)
    assert r.per_class is not None
    rows = {row.kernel_class: row for row in r.per_class.rows}
    # the CPU run's SDPA and the analysis' record: one decode-shaped op on both sides
    assert (rows[DECODE].records, rows[DECODE].ops) == (1, 1)
    assert "attention" not in rows
    # the table's class column is as wide as its longest name (16 letters + a space)
    table = render_measure(r, "table").splitlines()
    header = next(ln for ln in table if ln.startswith("  class"))
    row = next(ln for ln in table if ln.startswith(f"  {DECODE}"))
    assert header.index("records") + len("records") == row.index(" 1 ") + 2
