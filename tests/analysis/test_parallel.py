"""Tensor and pipeline parallelism over a traced step: per-device model states, the
collectives the split adds, the bubble, and the plans that cannot run."""

from __future__ import annotations

import pytest
import torch
from parallel_models import Tiny
from torch import nn

from modelmeter.analysis.parallel import check_plan
from modelmeter.errors import InputError
from modelmeter.hardware import load_spec
from modelmeter.usecases.train import train


def _train(**kw):  # noqa: ANN003, ANN202
    return train(Tiny(), "2x16:int64", optimizer="sgd", **kw)


def test_tensor_parallel_splits_the_weight_matrices() -> None:
    # t = 2: 1,856 / 2 + 64 = 992 parameters per device; fp32 weights 992 x 4 = 3,968 bytes,
    # gradients the same, SGD's momentum the same
    r = _train(devices=2, tensor=2)
    assert r.params == (1920, 1920)
    z = r.sharded
    assert (z.weights, z.gradients, z.optimizer) == (3968, 3968, 3968)
    # 2 all-reduces of each layer's output (2 x 16 x 8 x 4 B = 1,024) per layer in the forward,
    # 2 in the backward: 2 x 4 = 8 calls each, 2 x 1/2 x 1,024 = 1,024 sent per call
    acts = [(c.kind, c.what, c.bytes, c.count, c.sent, c.group)
            for c in r.communication.collectives]  # fmt: skip
    assert acts == [("all-reduce", "activations", 1024, 8, 8192, 2),
                    ("all-reduce", "activation gradients", 1024, 8, 8192, 2)]  # fmt: skip


def test_pipeline_stages_and_their_point_to_point_traffic() -> None:
    # the embedding runs before the first layer (first stage), the head after the last (last
    # stage). p = 2: 800 + 2 x 80 = 960 and 2 x 80 + 800 = 960 parameters; the reported
    # device (the worst peak: the last stage, test_stages.py) 960 x 4 B = 3,840 of fp32
    # weights. p = 3 (layers 2, 1, 1): 800 + 160 = 960, 80, 80 + 800 = 880; the last stage's
    # 880 x 4 = 3,520
    assert _train(devices=2, pipeline=2, micro_batches=4).sharded.weights == 960 * 4
    assert _train(devices=3, pipeline=3, micro_batches=4).sharded.weights == 880 * 4
    r = _train(devices=2, pipeline=2, micro_batches=4)
    # each micro-batch sends its 1,024-byte boundary forward and the gradient back: 4 x 1,024
    assert [(c.kind, c.what, c.sent) for c in r.communication.collectives] == [
        ("send/recv", "activations", 4096), ("send/recv", "activation gradients", 4096)]  # fmt: skip
    assert r.accumulate == 4 and r.parallel.bubble == (2 - 1) / (4 + 2 - 1)  # 0.2


def test_the_bubble_and_the_model_parallel_split_in_the_step_time() -> None:
    one = _train(hardware=load_spec("h100-sxm"), accumulate=4)
    r = _train(devices=2, pipeline=2, micro_batches=4, hardware=load_spec("h100-sxm"))
    t = r.time
    # each device does half the work; the bubble is (p - 1) / m of it: 1/4
    assert t.compute_s == pytest.approx(one.time.compute_s / 2)
    assert t.bubble_s == pytest.approx(t.compute_s * (2 - 1) / 4)
    assert t.bubble_s / (t.compute_s + t.bubble_s) == pytest.approx(0.2)
    assert t.step_s == pytest.approx(t.compute_s + t.bubble_s + t.communication_s)
    # tokens per device: 4 micro-batches x 32 tokens per replica, over its 2 devices
    assert r.throughput == pytest.approx(4 * 32 / t.step_s / 2)


def test_data_parallel_replicas_over_what_tensor_and_pipeline_leave() -> None:
    # 16 devices = data 4 x tensor 2 x pipeline 2; ZeRO-3 over the 4 replicas
    r = _train(devices=16, tensor=2, pipeline=2, micro_batches=2, zero=3)
    assert (r.parallel.data, r.sharded.devices) == (4, 4)
    assert r.communication.to_dict()["total_devices"] == 16


def test_bad_plans() -> None:
    with pytest.raises(InputError, match="tensor parallel degree 3 does not divide the model's "
                                         "4 attention heads"):  # fmt: skip
        _train(devices=3, tensor=3)
    with pytest.raises(InputError, match="5 pipeline stages for 4 layers"):
        _train(devices=5, pipeline=5)
    with pytest.raises(InputError, match="6 devices do not split into tensor 4"):
        _train(devices=6, tensor=4)
    with pytest.raises(InputError, match="differ"):
        _train(devices=2, pipeline=2, micro_batches=4, accumulate=2)
    with pytest.raises(InputError, match="needs repeated layers"):
        train(nn.Linear(4, 4), (1, 4), devices=2, pipeline=2)
    with pytest.raises(InputError, match="micro-batches must be"):
        check_plan(2, 1, 2, 0)
    assert torch.is_grad_enabled()


def test_sequence_parallelism_turns_each_all_reduce_into_reduce_scatter_and_all_gather() -> None:
    spec = load_spec("h100-sxm")
    plain = _train(devices=2, tensor=2, hardware=spec).communication
    sp = _train(devices=2, tensor=2, sequence_parallel=True, hardware=spec).communication
    rows = [(c.kind, c.what, c.phase, c.bytes, c.count, c.sent) for c in sp.collectives]
    # each layer's output: 2 x 16 x 8 x 4 B = 1,024; 2 per layer x 4 layers = 8 per step;
    # a reduce-scatter or an all-gather over 2 sends (2-1)/2 x 1,024 = 512, 8 x 512 = 4,096
    assert rows == [("all-gather", "activations", "forward", 1024, 8, 4096),
                    ("reduce-scatter", "activations", "forward", 1024, 8, 4096),
                    ("all-gather", "activation gradients", "backward", 1024, 8, 4096),
                    ("reduce-scatter", "activation gradients", "backward", 1024, 8, 4096),
                    ("all-gather", "activations again", "backward", 1024, 8, 4096)]  # fmt: skip
    # a reduce-scatter and an all-gather send what the all-reduce sent (2 x 4,096 = 8,192 per
    # direction and phase) in as many ring steps (1 + 1 = 2 x (2-1)): the same time
    ar = {c.phase: c for c in plain.collectives}
    for phase in ("forward", "backward"):
        pair = [c for c in sp.collectives if c.phase == phase and c.what != "activations again"]
        assert sum(c.sent for c in pair) == ar[phase].sent == 8192
        assert sum(c.time_s for c in pair) == pytest.approx(ar[phase].time_s)
    # the backward's extra all-gather of the column-parallel linears' inputs (kept split)
    extra = sp.collectives[-1]
    assert sp.time_s == pytest.approx(plain.time_s + extra.time_s)


def test_an_interleaved_schedule_shrinks_the_bubble_and_sends_v_times() -> None:
    spec = load_spec("h100-sxm")
    r = _train(devices=2, pipeline=2, micro_batches=4, virtual_stages=2, hardware=spec)
    p = r.parallel
    # bubble (p-1)/(v m) = 1/8 of the compute; (p-1)/(v m + p - 1) = 1/9 of compute + bubble
    assert (p.virtual, p.bubble_ratio, p.bubble) == (2, 1 / 8, 1 / 9)
    assert r.time.bubble_s == pytest.approx(r.time.compute_s / 8)
    # each micro-batch crosses v = 2 boundaries per stage each way: 2 x 4 sends of 1,024 bytes
    assert [(c.kind, c.count, c.sent) for c in r.communication.collectives] == [
        ("send/recv", 8, 8192), ("send/recv", 8, 8192)]  # fmt: skip


def test_bad_schedules() -> None:
    with pytest.raises(InputError, match="sequence parallelism .* needs a tensor parallel"):
        _train(devices=2, sequence_parallel=True)
    with pytest.raises(InputError, match="2 virtual stages need a pipeline"):
        _train(devices=2, virtual_stages=2)
    with pytest.raises(InputError, match="4 layers do not split into 2 stages x 3 virtual"):
        _train(devices=2, pipeline=2, micro_batches=4, virtual_stages=3)
    with pytest.raises(InputError, match="not GPipe"):
        _train(devices=2, pipeline=2, micro_batches=4, virtual_stages=2, schedule="gpipe")
    with pytest.raises(InputError, match="multiple of the 2 pipeline stages"):
        _train(devices=2, pipeline=2, micro_batches=3, virtual_stages=2)
    with pytest.raises(InputError, match="unknown pipeline schedule"):
        _train(devices=2, pipeline=2, schedule="zb")


def _llama(tmp_path, heads: int, kv_heads: int) -> str:  # noqa: ANN001
    import json

    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
           "intermediate_size": 128, "num_attention_heads": heads,
           "num_key_value_heads": kv_heads, "num_hidden_layers": 2, "vocab_size": 100,
           "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip
    path = tmp_path / f"llama-{heads}-{kv_heads}.json"
    path.write_text(json.dumps(cfg))
    return f"hf:{path}"


def test_tensor_parallel_degree_must_divide_the_key_value_heads(tmp_path) -> None:  # noqa: ANN001
    from modelmeter.analysis.parallel import check_heads, kv_heads_of
    from modelmeter.models import load

    # grouped-query attention, 8 query heads in 2 groups: t = 2 gives each device 4 query
    # heads and 1 key/value head (2 / 2); t = 4 would need 2 / 4 = half a key/value head,
    # which Megatron-Core refuses (divide(num_query_groups, t) asserts): so do we, before
    # tracing, though 8 % 4 == 0 for the query heads
    model = _llama(tmp_path, 8, 2)
    assert kv_heads_of(load(model).model) == 2
    r = train(model, "1x8", optimizer="sgd", devices=2, tensor=2)
    assert r.parallel.tensor == 2
    with pytest.raises(InputError, match="tensor parallel degree 4 does not divide the model's "
                                         "2 key/value heads"):  # fmt: skip
        train(model, "1x8", optimizer="sgd", devices=4, tensor=4)
    # Llama-3 (8 key/value heads of 64 query heads): t = 8 fits, 16 does not (16 divides 64)
    check_heads(8, 64, 8)
    with pytest.raises(InputError, match="16 does not divide the model's 8 key/value heads"):
        check_heads(16, 64, 8)
    # multi-query attention (GPT-BigCode's multi_query): one key/value head, no t > 1 fits
    mqa = type("M", (), {"config": type("C", (), {"multi_query": True, "n_head": 8})()})()
    assert kv_heads_of(mqa) == 1
    assert kv_heads_of(nn.Linear(2, 2)) is None  # every head its own keys and values
