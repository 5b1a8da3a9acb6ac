"""Tensor-parallel serving's split rule on the traced tiny Llama (tests/tiny_llama.py), and
its checks. Expectations derived by hand below.

Tiny Llama, float32: hidden 64, 4 heads of 16, 2 KV heads, MLP 128, vocab 256, 2 layers,
untied head. Parameters per layer: q 64x64 = 4,096, k and v 64x32 = 2,048 each, o 4,096,
gate/up/down 64x128 = 8,192 each (24,576), norms 2 x 64 = 128: 36,864 in Linear layers.
Embedding 256 x 64 = 16,384, lm_head 16,384, final norm 64. Split (Linear, Embedding):
2 x 36,864 + 2 x 16,384 = 106,496 parameters = 425,984 bytes; replicated: the 5 norms of 64
(2 per layer and the final one), 320 parameters = 1,280 bytes; whole model 427,264 bytes.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from tiny_llama import TINY_LLAMA, load_model

from modelmeter.analysis.serving_parallel import (
    ServingSplit,
    check_serving,
    device_cost,
    device_weights,
    event_kinds,
    kv_projections,
    scale_node_ops,
    split_modules,
)
from modelmeter.builder import build
from modelmeter.costs import Cost
from modelmeter.errors import InputError

pytest.importorskip("transformers")

from modelmeter.frontends.torch.kvcache import trace_phase  # noqa: E402

SPLIT_BYTES = (2 * 36_864 + 2 * 16_384) * 4  # 425,984
REPLICATED = 5 * 64 * 4  # 1,280: 2 norms per layer and the final norm


@pytest.fixture(scope="module")
def prefill(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model = load_model(tmp_path_factory, "tiny", TINY_LLAMA)
    trace = trace_phase(model, batch=2, tokens=8).trace
    return trace, build(trace)


def _kinds(prefill: tuple, split: ServingSplit) -> list[str]:
    trace, report = prefill
    return event_kinds(trace.events, split_modules(trace.modules, report),
                       kv_projections(report, split, 16))  # fmt: skip


def test_weights_per_device_t2(prefill: tuple) -> None:
    _, report = prefill
    split = ServingSplit(2, 4, 2)
    w = device_weights(report, split, split_modules(prefill[0].modules, report))
    assert SPLIT_BYTES == 425_984 and w.whole_split == SPLIT_BYTES
    assert w.replicated == REPLICATED
    # 425,984 / 2 + 1,280 = 214,272
    assert w.split == 212_992 and w.total == 214_272
    assert w.whole_split + w.replicated == report.size_by_dtype()["native"] == 427_264


def test_weights_per_device_kv_replicated_t4(prefill: tuple) -> None:
    # T = 4 > 2 kv heads: each device holds 1 kv head (replicated on 2 devices), so k_proj
    # and v_proj (2,048 parameters = 8,192 bytes each, 4 of them) are 1/2 per device:
    # 32,768 / 2 = 16,384; the other split weights 425,984 - 32,768 = 393,216 / 4 = 98,304;
    # + 1,280 replicated = 115,968
    _, report = prefill
    split = check_serving(4, 4, 2)
    assert split.kv_per_device == 1 and split.kv_replicas == 2
    assert split.kv_share == Fraction(1, 2)
    kv = kv_projections(report, split, 16)
    assert kv == {f"model.layers.{i}.self_attn.{p}" for i in (0, 1) for p in ("k_proj", "v_proj")}
    w = device_weights(report, split, split_modules(prefill[0].modules, report), kv)
    assert w.total == 115_968


def test_op_kinds_follow_megatron_pairs(prefill: tuple) -> None:
    trace, _ = prefill
    kinds = _kinds(prefill, ServingSplit(2, 4, 2))
    by = {}
    for ev, k in zip(trace.events, kinds, strict=True):
        by.setdefault((ev.scope, ev.target.split(".")[-1]), set()).add(k)
    attn = "model.layers.0.self_attn"
    assert by[(f"{attn}.q_proj", "mm")] == {"column"}
    assert by[(f"{attn}.o_proj", "mm")] == {"row"}
    assert by[("model.layers.0.mlp.gate_proj", "mm")] == {"column"}
    assert by[("model.layers.0.mlp.down_proj", "mm")] == {"row"}
    assert by[("model.layers.0.mlp", "mul")] == {"split"}  # act(gate) * up: 1/T features
    assert by[(attn, "neg")] == {"split"}  # rotary on the device's heads
    assert by[("model.layers.0.input_layernorm", "rsqrt")] == {"whole"}
    assert by[("model.layers.0", "add")] == {"whole"}  # residuals
    assert by[("model.rotary_emb", "cos")] == {"whole"}
    assert by[("lm_head", "mm")] == {"column"}  # vocabulary-parallel logits


def test_device_prefill_costs(prefill: tuple) -> None:
    trace, whole = prefill
    dev = build(trace)
    scale_node_ops(dev, _kinds(prefill, ServingSplit(2, 4, 2)), ServingSplit(2, 4, 2))
    # B x P = 16 tokens: linear MACs 16 x (2 x 36,864 + 16,384) = 1,441,792; attention
    # QK^T and AV over 8 x 8 per head: 2 layers x 2 x 4 heads x 8 x 8 x 16 x 2 = 32,768;
    # 1,474,560 in all, every MAC in a split op: 737,280 per device
    assert whole.total().cost.macs == 1_474_560
    assert dev.total().cost.macs == 737_280
    node = {n.name: n for n in dev.modules()}
    ref = {n.name: n for n in whole.modules()}
    norm = "model.layers.0.input_layernorm"
    assert node[norm].self_cost() == ref[norm].self_cost()  # replicated: whole
    # q_proj, column-parallel: reads its whole input 16 x 64 x 4 = 4,096 bytes and half
    # its weight 16,384 / 2 = 8,192; writes half its 4,096-byte output
    q = node["model.layers.0.self_attn.q_proj"].self_cost()
    assert (q.bytes_read, q.weight_bytes, q.bytes_written) == (12_288, 8_192, 2_048)
    # o_proj, row-parallel: half of the 4,096 input and of the 16,384 weight read; its
    # output (the partial sums the all-reduce adds) whole, 4,096
    o = node["model.layers.0.self_attn.o_proj"].self_cost()
    assert (o.bytes_read, o.weight_bytes, o.bytes_written) == (10_240, 8_192, 4_096)


def test_device_cost_rounds_up_and_kv_share() -> None:
    c = Cost(macs=7, flops=15, bytes_read=100, bytes_written=9, weight_bytes=40)
    split = ServingSplit(4, 8, 2)  # kv share 1/2 (2 kv heads over 4: one per device)
    assert device_cost(c, "split", split) == Cost(2, 4, 25, 3, 10)  # ceil(x / 4)
    assert device_cost(c, "kv", split) == Cost(4, 8, 50, 5, 20)  # ceil(x / 2)
    assert device_cost(c, "row", split) == Cost(2, 4, 25, 9, 10)  # the output whole
    # column: the 60 activation bytes read whole, 40 / 4 = 10 of the weight
    assert device_cost(c, "column", split) == Cost(2, 4, 70, 3, 10)
    assert device_cost(c, "whole", split) == c


@pytest.mark.parametrize(
    ("tensor", "heads", "kv", "words"),
    [
        (3, 4, 2, "does not divide the model's 4 attention heads"),
        (9, 72, 8, "at most 8"),
        (6, 12, 8, "neither divides the other"),
        (0, 4, 2, "whole number >= 1"),
        (2, None, None, "attention heads"),
    ],
)
def test_refused(tensor: int, heads: int | None, kv: int | None, words: str) -> None:
    with pytest.raises(InputError, match=words):
        check_serving(tensor, heads, kv)


def test_accepted_splits() -> None:
    # T divides kv: kv / T heads each; T a multiple of kv: one head, T / kv copies
    assert check_serving(4, 64, 8).kv_per_device == 2
    s = check_serving(8, 32, 4)
    assert (s.kv_per_device, s.kv_replicas, s.kv_share) == (1, 2, Fraction(1, 4))
    assert check_serving(1, 3, 1).kv_share == 1


def _ev(scope: str, target: str, ins: tuple, outs: tuple) -> object:
    from modelmeter.events import OpEvent
    from modelmeter.registry import OpCall

    return OpEvent(scope, "aten", target, OpCall(target, {}, ins, outs))


def _t(sid: int, numel: int, *, weight: bool = False, kv: bool = False) -> object:
    from modelmeter.registry import TensorMeta

    return TensorMeta((numel,), "float32", sid, weight, kv=kv)


def test_activation_share_replay() -> None:
    from modelmeter.analysis.serving_parallel import activation_share

    a, b, c = _t(1, 25), _t(2, 100), _t(3, 25)  # 100, 400 and 100 bytes
    events = [_ev("m", "relu", (), (a,)), _ev("m", "mul", (a,), (b,)),
              _ev("m", "sum", (b,), (c,))]  # fmt: skip
    kinds = ["whole", "split", "whole"]
    # whole: A (born 0, last read 1), B (1 .. 2), C (2): live 100, 500, 500: peak 500;
    # one device of 4 holds B at 400 / 4 = 100: 100, 200, 200: peak 200; share 2/5
    assert activation_share(events, kinds, 4) == Fraction(2, 5)
    # the cache (a kv output, storage 5: 1,000 elements, 4,000 bytes) is counted apart:
    # share 2/5 still. (Were it replayed as a split entry: 4,000 whole, 1,000 on a device
    # at event 3, share 1,000 / 4,000 = 1/4.)
    events.append(_ev("m", "cat", (), (_t(5, 1000, kv=True),)))
    assert activation_share(events, [*kinds, "kv"], 4) == Fraction(2, 5)


def test_a_split_storage_stays_split_while_it_lives() -> None:
    # storage ids are serials never given twice, so a split storage is split wherever and
    # whenever it is read (training's region, tp_region.py, follows the same data flow): q
    # is split by layer 0's column product; read after the row product and in layer 1 it
    # is still split; a 0-d sum of a split tensor is split (each device's partial sum); a
    # storage no op has made split (7) is whole.
    w, w2 = _t(9, 4, weight=True), _t(8, 4, weight=True)
    x, q = _t(1, 4), _t(2, 4)
    events = [
        _ev("model.layers.0.mlp.up", "mm", (x, w), (q,)),  # column: q split
        _ev("model.layers.0.mlp", "silu", (q,), (_t(3, 4),)),  # split
        _ev("model.layers.0.mlp.down", "mm", (_t(3, 4), w2), (_t(5, 4),)),  # row: 5 whole
        _ev("model.layers.0.mlp", "neg", (q,), (_t(4, 4),)),  # q after the row: split
        _ev("model.layers.1.attn", "sum", (_t(4, 4),), (_scalar(6),)),  # layer 1: split
        _ev("model.layers.1.attn", "where", (_t(7, 4), _scalar(6)), (_t(10, 4),)),  # split
        _ev("model.layers.1.attn", "add", (_t(5, 4), _t(7, 4)), (_t(11, 4),)),  # whole
    ]
    kinds = event_kinds(events, {"model.layers.0.mlp.up", "model.layers.0.mlp.down"})
    assert kinds == ["column", "split", "row", "split", "split", "split", "whole"]


def _scalar(sid: int) -> object:
    from modelmeter.registry import TensorMeta

    return TensorMeta((), "float32", sid)
