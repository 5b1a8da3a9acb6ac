"""A training step against the number of devices from one trace: each point equals a separate
``train(..., devices=N)`` (exactly), and the chart's data series."""

from __future__ import annotations

import pytest
from parallel_models import Tiny
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from modelmeter.analysis.device_sweep import DEVICE_COUNTS, point_of
from modelmeter.errors import InputError
from modelmeter.hardware import load_spec
from modelmeter.render.device_plot import device_series
from modelmeter.usecases.train import train, train_and_devices, train_devices


def mlp() -> nn.Module:
    # 64 x 128 + 128 + 128 x 32 + 32 = 12,448 parameters; fp32: 49,792 bytes
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))


H100 = load_spec("h100-sxm")


def test_the_counts_are_the_powers_of_two_to_1024() -> None:
    assert DEVICE_COUNTS == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@pytest.mark.parametrize("zero", [0, 1, 3])
def test_each_point_equals_a_separate_run(zero: int) -> None:
    s = train_devices(mlp(), "8x64", zero=zero, hardware=H100)
    assert [p.devices for p in s.points] == list(DEVICE_COUNTS)
    by = {p.devices: p for p in s.points}
    for n in (1, 2, 8, 64, 1024):  # within a node, one node, and over nodes (the NIC)
        one = train(mlp(), "8x64", zero=zero, hardware=H100, devices=n)
        assert point_of(one, n) == by[n]  # every figure, floats included, exactly


@pytest.mark.parametrize("options", [
    {"zero": 3, "shard_group": 2}, {"zero": 2, "collective": "ring"},
    {"zero": 3, "collective": "hierarchical", "nics_per_node": 2},
    {"zero": 1, "shard_group": "node", "gpus_per_node": 4}])  # fmt: skip
def test_hybrid_and_collective_points_equal_separate_runs(options: dict) -> None:
    s = train_devices(mlp(), "8x64", hardware=H100, **options)
    group = options.get("shard_group")
    node = group == "node"
    group = options.get("gpus_per_node", 8) if node else group or 1
    # the counts a shard group of G does not divide are left out (G = 2: 1); a node's group
    # (4) shrinks to 1 and 2 replicas, so every count stays
    assert [p.devices for p in s.points] == [n for n in DEVICE_COUNTS
                                             if n % group == 0 or node]  # fmt: skip
    by = {p.devices: p for p in s.points}
    for n in (2, 4, 16, 1024) if node else (4, 16, 1024):
        one = train(mlp(), "8x64", hardware=H100, devices=n, **options)
        assert point_of(one, n) == by[n]  # the peak per device and gathered weights included
    # sharded within a fixed group, a device's peak stays as N grows; over all N it falls
    assert by[1024].peak is not None
    assert (by[1024].peak == by[4].peak) if group > 1 else (by[1024].peak < by[4].peak)


def test_tensor_and_pipeline_points_equal_separate_runs() -> None:
    # t = 2 x p = 2: a replica is 4 devices; 1 and 2 do not split into it and are left out
    kw = {"optimizer": "sgd", "tensor": 2, "pipeline": 2, "micro_batches": 2, "zero": 3,
          "hardware": H100}  # fmt: skip
    s = train_devices(Tiny(), "2x16:int64", **kw)
    assert [p.devices for p in s.points] == [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    by = {p.devices: p for p in s.points}
    for n in (4, 16, 128):
        assert point_of(train(Tiny(), "2x16:int64", devices=n, **kw), n) == by[n]


@pytest.mark.parametrize("plan", [
    {"tensor": 2, "sequence_parallel": True},
    {"pipeline": 2, "micro_batches": 4, "virtual_stages": 2},
    {"tensor": 2, "pipeline": 2, "micro_batches": 4, "schedule": "gpipe"},
    # ZeRO-3's gathered slices in hybrid groups of 2 with the sequence-parallel split and the
    # hierarchical collectives (ZeRO-3 under a pipeline: the test above)
    {"tensor": 2, "sequence_parallel": True, "zero": 3, "shard_group": 2,
     "collective": "hierarchical"},
])  # fmt: skip
def test_sequence_parallel_and_schedule_points_equal_separate_runs(plan: dict) -> None:
    kw = {"optimizer": "sgd", "zero": 1, "hardware": H100, **plan}
    s = train_devices(Tiny(), "2x16:int64", **kw)
    by = {p.devices: p for p in s.points}
    for n in (4, 64):
        one = train(Tiny(), "2x16:int64", devices=n, **kw)
        assert point_of(one, n) == by[n]
        # the point's activations: the inputs (2 x 16 int64 = 256 bytes) and what one device
        # holds at once; its peak the device's
        assert by[n].memory["activations"] == 2 * 16 * 8 + one.device_activations.held
        assert by[n].peak == one.device_peak.bytes


def test_zero3_memory_per_device_by_category() -> None:
    r, s = train_and_devices(mlp(), "8x64", devices=4, zero=3, hardware=H100)
    assert r.sharded.weights == 49792 // 4  # the result at --devices comes with the sweep
    p1, p1024 = s.points[0], s.points[-1]
    # one device holds all: weights 49,792, gradients 49,792, AdamW m + v 99,584
    assert (p1.memory["weights"], p1.memory["gradients"], p1.memory["optimizer"]) == (
        49792, 49792, 99584)  # fmt: skip
    # 1,024 devices: ceil(49,792 / 1,024) = 49, ceil(99,584 / 1,024) = 98
    assert (p1024.memory["weights"], p1024.memory["gradients"],
            p1024.memory["optimizer"]) == (49, 49, 98)  # fmt: skip
    # inputs 8 x 64 x 4 = 2,048 bytes plus the saved activations: one micro-batch, not split
    acts = 2048 + r.memory.activations
    assert all(p.memory["activations"] == acts for p in s.points)
    assert p1.communication_s == 0 and p1024.communication_s > 0
    # ZeRO-3's gathered weights at a device's peak (in the backward): no nn.ModuleList, so the
    # whole model is the one unit: its weights 49,792 + its gradient 49,792 = 99,584; none on
    # one device (nothing sharded); one device's peak is the traced one there
    assert (p1.memory["gathered weights"], p1024.memory["gathered weights"]) == (0, 99_584)
    assert p1.peak == r.peak.bytes and p1024.peak < p1.peak
    assert "gathered weights" in device_series(s).memory_gb


def test_the_chart_data() -> None:
    s = train_devices(mlp(), "8x64", zero=2, hardware=H100)
    d = device_series(s)
    assert d.devices == DEVICE_COUNTS
    assert list(d.memory_gb) == ["weights", "gradients", "optimizer", "activations"]  # no buffers
    # ZeRO-2: the weights are not partitioned (49,792 B at every N), the gradients are
    assert d.memory_gb["weights"] == (49792 / 1e9,) * 11
    assert d.memory_gb["gradients"][1] == 49792 / 2 / 1e9
    assert d.capacity_gb == H100.capacity / 1e9
    for i, p in enumerate(s.points):  # the stack adds up to each device's total
        assert sum(v[i] for v in d.memory_gb.values()) == pytest.approx(p.total / 1e9)
        assert d.step_ms[i] == p.step_s * 1e3 and d.throughput[i] == p.throughput
        assert d.peak_gb[i] == p.peak / 1e9  # the device's peak, drawn over the stack
    assert d.unit == "samples/s" and "ZeRO-2" in d.title and "h100-sxm" in d.title
    assert s.to_dict()["schema"] == "modelmeter.device_sweep/1"
    assert len(s.to_dict()["points"]) == 11


def test_without_a_chip_memory_only_and_bad_counts() -> None:
    s = train_devices(mlp(), "8x64", counts=(1, 4), zero=1)
    assert [p.step_s for p in s.points] == [None, None] and s.chip is None
    with pytest.raises(InputError, match="whole numbers"):
        train_devices(mlp(), "8x64", counts=(0, 2))
    with pytest.raises(InputError, match="no device count"):
        train_devices(Tiny(), "2x16:int64", counts=(1, 2), tensor=4)


def test_a_tied_pipeline_points_equal_separate_runs() -> None:
    # GPT-2 ties lm_head to wte: under a pipeline each point runs the first and last stage's
    # all-reduce of its gradient, as a separate run does
    cfg = GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=500, n_positions=64,
                     bos_token_id=0, eos_token_id=0)  # fmt: skip
    kw = {"optimizer": "sgd", "tensor": 2, "pipeline": 2, "micro_batches": 4, "hardware": H100}
    s = train_devices(GPT2LMHeadModel(cfg), "2x16:int64", **kw)
    by = {p.devices: p for p in s.points}
    for n in (4, 64):
        one = train(GPT2LMHeadModel(cfg), "2x16:int64", devices=n, **kw)
        assert any(c.what == "tied embedding gradients" for c in one.communication.collectives)
        assert point_of(one, n) == by[n]
