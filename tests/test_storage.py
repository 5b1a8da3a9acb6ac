"""Storage formats (weight-only int8/int4 with groups, fp8; a KV-cache dtype): the exact bytes
of each, derived by hand; the builder prices weights of matrix products and KV-cache tensors
at them, and never changes a count."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.builder import build
from modelmeter.errors import InputError, ReportFormatError
from modelmeter.events import ModuleInfo, OpEvent, Trace
from modelmeter.registry import OpCall, TensorMeta
from modelmeter.report import Report
from modelmeter.storage import (
    KVFormat,
    Pricing,
    Storage,
    WeightFormat,
    parse_kv_format,
    parse_weight_format,
)

N = 4096 * 4096  # a Linear(4096, 4096) weight: 16,777,216 elements, rows of 4096


def test_int4_default_is_gptq_awq_layout() -> None:
    f = parse_weight_format("int4")
    assert f == parse_weight_format("int4:g128") == parse_weight_format(" INT4:g128:asym ")
    assert (f.name, f.bits, f.group_size, f.scale_dtype, f.zero_bits) == (
        "int4:g128", 4, 128, "float16", 4)  # fmt: skip
    # 4096*4096/2 = 8,388,608 bytes of packed int4; 4096 rows * 4096/128 = 131,072 groups,
    # each an fp16 scale (2 bytes) and an int4 zero point (packed, 0.5 byte):
    # 131,072 * 2 + 131,072 * 4 / 8 = 262,144 + 65,536 -> 8,388,608 + 327,680 = 8,716,288
    assert f.nbytes(N, 4096) == 8_716_288


def test_int4_group_64_symmetric() -> None:
    f = parse_weight_format("int4:g64:sym")
    assert f.name == "int4:g64:sym" and f.zero_bits == 0
    # 8,388,608 + (4096*4096/64 = 262,144 groups) * 2 bytes of fp16 scale = 8,912,896
    assert f.nbytes(N, 4096) == 8_912_896
    # with fp16 zero points it would be 8,388,608 + 131,072*(2+2) = 8,912,896 at g128 too;
    # the packed int4 zero of GPTQ/AWQ is what we count: int4:g64 (asym) adds 262,144/2
    assert parse_weight_format("int4:g64").nbytes(N, 4096) == 8_912_896 + 131_072


def test_int8_is_per_channel_symmetric() -> None:
    f = parse_weight_format("int8")
    assert (f.name, f.granularity, f.zero_bits) == ("int8", "channel", 0)
    # 16,777,216 int8 + one fp16 scale per output row: 4096 * 2 = 8,192 -> 16,785,408
    assert f.nbytes(N, 4096) == 16_785_408
    # a Linear(11008 -> 4096) (Llama's down_proj): 4096 rows of 11,008 -> 4096 scales
    assert f.nbytes(4096 * 11008, 11008) == 4096 * 11008 + 4096 * 2
    # int8:g128 (a group size makes it grouped): 131,072 groups * 2 bytes
    assert parse_weight_format("int8:g128").nbytes(N, 4096) == N + 262_144
    # int8:asym adds an int8 zero point per row: 4096 more bytes
    assert parse_weight_format("int8:asym").nbytes(N, 4096) == 16_785_408 + 4096


def test_fp8_per_tensor_and_plain_dtypes() -> None:
    f = parse_weight_format("fp8")
    assert (f.dtype, f.granularity, f.scale_dtype) == ("float8_e4m3fn", "tensor", "float32")
    # one byte per element plus one fp32 scale for the tensor: 16,777,216 + 4
    assert f.nbytes(N, 4096) == 16_777_220
    assert parse_weight_format("fp16").nbytes(N, 4096) == 2 * N  # no scales
    assert parse_weight_format("bf16").nbytes(N, 4096) == 2 * N
    assert parse_weight_format("fp32").nbytes(N, 4096) == 4 * N


def test_rounding_partial_groups_and_odd_counts() -> None:
    f = parse_weight_format("int4")
    # 3 rows of 100: ceil(300*4/8) = 150 bytes of data; each row is one partial group of
    # 100 < 128 (it still has its scale): 3 groups -> 3*2 = 6 bytes of scale, zero points
    # ceil(3*4/8) = 2 bytes -> 158
    assert f.nbytes(300, 100) == 158
    # 2 rows of 130: ceil(130/128) = 2 groups per row, 4 groups: 130 + 8 + 2 = 140
    assert f.nbytes(260, 130) == 140
    # 3 int4 elements pack into ceil(12/8) = 2 bytes, one group: 2 + 2 + 1 = 5
    assert f.nbytes(3, 3) == 5
    assert f.nbytes(0, 128) == 0


def test_kv_formats() -> None:
    # Llama-2-7B, one token: K and V of 32 layers * 32 heads * 128 = 262,144 elements
    elems = 2 * 32 * 32 * 128
    assert parse_kv_format("fp16").nbytes(elems, 128) == 524_288  # the figure
    assert parse_kv_format("bf16").nbytes(elems, 128) == 524_288
    assert parse_kv_format("fp8").nbytes(elems, 128) == 262_144  # per-layer scale not stored
    # int8: 262,144 bytes + per head vector (2048 of them) an fp16 scale and zero point,
    # 2048 * 4 = 8,192 -> 270,336
    assert parse_kv_format("int8").nbytes(elems, 128) == 270_336
    # int4: 131,072 + 8,192 = 139,264
    assert parse_kv_format("INT4").nbytes(elems, 128) == 139_264
    assert isinstance(parse_kv_format("fp8"), KVFormat)


@pytest.mark.parametrize("text", ["int3", "int4:g0", "int4:gx", "fp8:g128", "fp16:sym", "", "q4_k"])
def test_bad_weight_format_is_one_line_listing_the_formats(text: str) -> None:
    with pytest.raises(InputError) as e:
        parse_weight_format(text)
    msg = str(e.value)
    assert "\n" not in msg and "fp32, fp16, bf16, fp8, int8, int4" in msg and ":gN" in msg


def test_bad_kv_format() -> None:
    with pytest.raises(InputError, match=r"use one of fp16, bf16, fp8, int8, int4$"):
        parse_kv_format("fp32")


def test_pricing_of_and_round_trip() -> None:
    assert Pricing.of() is None
    p = Pricing.of("int4:g64", "fp8")
    assert p is not None and p.weights == parse_weight_format("int4:g64")
    assert p.kv_bytes(256, 128) == 256 and p.weight_bytes(256, 128) == 128 + 4 * 2 + 2
    s = Storage(p, 1, 16, 100)
    assert Storage.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert Pricing.of(weights=WeightFormat("fp16", "float16", 16)).kv is None


def test_linear_at_int4_changes_bytes_not_counts() -> None:
    m = nn.Sequential(nn.Linear(4096, 4096)).eval()
    plain = modelmeter.analyze(m, "1x4096")
    q = modelmeter.analyze(m, "1x4096", weights="int4")
    assert (q.total().macs, q.total().flops) == (plain.total().macs, plain.total().flops)
    # the weight at 8,716,288 bytes (above) instead of 4096*4096*4 = 67,108,864; the fp32
    # bias (4096*4 = 16,384) keeps its dtype
    assert plain.total().weight_bytes == 67_108_864 + 16_384
    assert q.total().weight_bytes == 8_716_288 + 16_384
    assert q.total().bytes_read == plain.total().bytes_read - 67_108_864 + 8_716_288
    assert q.total().bytes_written == plain.total().bytes_written
    # parameter memory at the format: the Report's native size
    assert q.size_by_dtype()["native"] == 8_716_288 + 16_384
    assert q.storage == Storage(Pricing(parse_weight_format("int4")), 1, N, 8_716_288)
    assert any(n.startswith("weights stored as int4 (groups of 128") for n in q.notes)
    assert plain.storage is None and "storage" not in plain.to_dict()
    # the op's compute dtype stays the activation's (weight-only)
    assert {rec.dtype for n in q.modules() for rec in n.ops} == {"float32"}


class _Lm(nn.Module):
    """An embedding, one projection, and an output head named as transformers names it."""

    def __init__(self, tied: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 64)
        self.proj = nn.Linear(64, 64, bias=False)
        self.lm_head = nn.Linear(64, 100, bias=False)
        self.head = nn.Linear(64, 100, bias=False)
        if tied:
            self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.embed(ids))
        return self.lm_head(h) + self.head(h)


def test_embeddings_heads_and_tied_weights_keep_their_dtype() -> None:
    # quantised: proj (64*64 = 4,096 elements, 64 rows of 64, one partial group each:
    # 2,048 bytes + 64 groups * (2 + 0.5) = 160 -> 2,208) and head (100 rows of 64: 3,200 +
    # 100 * 2.5 = 250 -> 3,450); the embedding and lm_head (100*64*4 = 25,600 each) stay fp32
    r = modelmeter.analyze(_Lm().eval(), "1x8:int64", weights="int4")
    assert r.storage is not None and (r.storage.tensors, r.storage.params) == (2, 4096 + 6400)
    assert r.storage.nbytes == 2_208 + 3_450
    assert r.size_by_dtype()["native"] == 2_208 + 3_450 + 2 * 25_600
    # tied to the embedding, ``head`` is one tensor with it, kept as it is
    tied = modelmeter.analyze(_Lm(tied=True).eval(), "1x8:int64", weights="int4")
    assert tied.size_by_dtype()["native"] == 2_208 + 2 * 25_600


def _kv_trace() -> Trace:
    """A decode step by hand: the new key (1x32x1x128 fp16) is appended to a cache of 10
    tokens (cat into a new cache storage, kv), then eager attention reads K^T (a transposed
    view of the cache: 1x32x128x11)."""
    cache = TensorMeta((1, 32, 10, 128), "float16", sid=1, kv=True)
    new = TensorMeta((1, 32, 1, 128), "float16", sid=2)
    grown = TensorMeta((1, 32, 11, 128), "float16", sid=3, kv=True)
    q = TensorMeta((32, 1, 128), "float16", sid=4)
    kt = TensorMeta((32, 128, 11), "float16", sid=3, kv=True)
    scores = TensorMeta((32, 1, 11), "float16", sid=5)
    events = [
        OpEvent("", "aten", "cat", OpCall("cat", {"tensors": (cache, new), "dim": 2},
                                          (cache, new), (grown,))),  # fmt: skip
        OpEvent("", "aten", "bmm", OpCall("bmm", {"self": q, "mat2": kt}, (q, kt), (scores,))),
    ]
    return Trace("kv", "torch", "meta", "exact", [], [ModuleInfo("", "M")], [], events)


def test_kv_cache_tensors_at_the_kv_format() -> None:
    plain = build(_kv_trace())
    priced = build(_kv_trace(), pricing=Pricing.of(kv="int4"))
    assert plain.total().macs == priced.total().macs == 32 * 11 * 128  # QK^T: 45,056
    assert plain.total().flops == priced.total().flops
    # fp16: cat reads 32*10*128*2 = 81,920 + 8,192 (new key), writes 32*11*128*2 = 90,112;
    # bmm reads q 8,192 + K^T 90,112, writes 32*11*2 = 704
    assert (plain.total().bytes_read, plain.total().bytes_written) == (188_416, 90_816)
    # int4 with an fp16 scale + zero per head vector of 128 (the cache's last dimension as
    # first seen, not the transposed view's 11): 64 + 4 = 68 bytes per 128 elements.
    # cat reads 320 vectors * 68 = 21,760 + 8,192, writes 352 * 68 = 23,936; bmm reads
    # 8,192 + 23,936 and writes 704
    assert priced.total().bytes_read == 21_760 + 8_192 + 8_192 + 23_936
    assert priced.total().bytes_written == 23_936 + 704
    assert priced.storage is not None and priced.storage.tensors == 0
    assert priced.notes[-1].startswith("KV cache stored as int4")


def test_report_json_round_trip_keeps_the_storage() -> None:
    m = nn.Sequential(nn.Linear(256, 256, bias=False)).eval()
    r = modelmeter.analyze(m, "1x256", weights="int8", kv="fp8")
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema"] == "modelmeter.report/1"
    assert d["storage"]["weights"]["name"] == "int8" and d["storage"]["kv"]["name"] == "fp8"
    # 256*256 int8 + 256 fp16 scales = 65,536 + 512
    assert d["storage"]["quantized"] == {"tensors": 1, "params": 65_536, "bytes": 66_048}
    back = Report.from_dict(d)
    assert back.storage == r.storage and back.size_by_dtype() == r.size_by_dtype()
    d["storage"]["weights"]["name"] = "int3"
    with pytest.raises(ReportFormatError, match="unknown weight format"):
        Report.from_dict(d)
    d["storage"] = {"quantized": {"tensors": -1}}
    with pytest.raises(ReportFormatError):
        Report.from_dict(d)


def test_bad_format_fails_before_the_model_loads() -> None:
    with pytest.raises(InputError, match="unknown weight format 'int5'"):
        modelmeter.analyze("hf:no-such-model", weights="int5")
    with pytest.raises(InputError, match="unknown KV-cache format"):
        modelmeter.analyze("hf:no-such-model", kv="e5m2")


def test_roofline_moves_the_priced_bytes_and_weights_fit_at_the_format() -> None:
    from modelmeter.hardware import spec_from_peak

    # 1 TFLOP/s of fp32 and 1 GB/s (no memory capacity given)
    spec = spec_from_peak(1e12, 1e9, "float32")
    m = nn.Sequential(nn.Linear(4096, 4096, bias=False)).eval()
    plain = modelmeter.roofline(modelmeter.analyze(m, "1x4096"), spec)
    q = modelmeter.roofline(modelmeter.analyze(m, "1x4096", weights="int4"), spec)
    # reads x 16,384 + W, writes y 16,384: fp32 W 67,108,864 -> 67,141,632 bytes;
    # int4 W 8,716,288 -> 8,749,056 bytes; both memory-bound, time = bytes / 1 GB/s
    assert (plain.total.bytes, q.total.bytes) == (67_141_632, 8_749_056)
    assert q.total.memory_s == pytest.approx(8_749_056 / 1e9)
    assert q.total.flops == plain.total.flops  # the compute is the activation dtype's
    assert q.dtype == plain.dtype == "float32"
    assert q.weights is not None and q.weights.weight_bytes == 8_716_288


def test_gold_priced_report_table_and_json(gold: Callable[[str, str], None]) -> None:
    from render_checks import check_json, check_rows_add_up

    from modelmeter.render import render_report

    m = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 256)).eval()
    r = modelmeter.analyze(m, "4x256", weights="int4:g64", kv="int8", mode="meta")
    # 262,144 weights / 2 = 131,072 bytes; rows of 256 (4 groups of 64) x 512 and rows of 512
    # (8 groups) x 256: 4,096 groups * (2 + 0.5) = 10,240 -> 141,312; fp32 biases 3,072 more
    assert r.storage is not None and r.storage.nbytes == 141_312
    assert r.size_by_dtype()["native"] == 144_384
    check_rows_add_up(r, depth=None)
    check_json(render_report(r, "json"))
    gold("storage_int4_g64.txt", render_report(r, "table", depth=None))
    gold("storage_int4_g64.json", render_report(r, "json"))
