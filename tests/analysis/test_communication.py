"""The communication of a data-parallel / ZeRO step: ring collectives' bytes and times, from
a traced step (hand derivations beside each figure)."""

from __future__ import annotations

import pytest
from torch import nn

from modelmeter.analysis.communication import (
    plan_link,
    ring_sent,
    ring_steps,
    step_communication,
)
from modelmeter.errors import InputError
from modelmeter.hardware import load_spec
from modelmeter.hardware.links import Link
from modelmeter.usecases.train import train

H100 = load_spec("h100-sxm")


class Layers(nn.Module):
    """An embedding-like input layer, 4 repeated layers in an nn.ModuleList, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 32, bias=False)  # 512 parameters
        self.layers = nn.ModuleList(nn.Linear(32, 32, bias=False) for _ in range(4))  # 4 x 1,024
        self.head = nn.Linear(32, 8, bias=False)  # 256

    def forward(self, x):  # noqa: ANN001, ANN201
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_ring_all_reduce_of_a_1000_parameter_fp32_model_on_4_devices() -> None:
    # ring all-reduce: 2 (N - 1) / N x bytes = 2 x 3 / 4 x 4,000 = 6,000 bytes sent per device
    assert ring_sent("all-reduce", 4000, 4) == 6000
    # reduce-scatter and all-gather each half of it: 3 / 4 x 4,000 = 3,000
    assert ring_sent("reduce-scatter", 4000, 4) == ring_sent("all-gather", 4000, 4) == 3000
    assert (ring_steps("all-reduce", 4), ring_steps("all-gather", 4)) == (6, 3)
    r = train(nn.Linear(1000, 1, bias=False), (2, 1000), optimizer="sgd", devices=4)
    c = r.communication
    assert [(x.kind, x.what, x.bytes, x.sent) for x in c.collectives] == [
        ("all-reduce", "gradients", 4000, 6000)]  # fmt: skip
    assert c.link is None and c.time_s == 0  # no chip, no link: bytes only


def test_zero_3_moves_1_5x_the_data_parallel_bytes() -> None:
    # Rajbhandari et al. 2020, 7.2: DP and ZeRO-1/2 send 2 Psi per device, ZeRO-3 3 Psi
    # 4,864 parameters in bf16: Psi = 9,728 bytes; 8 devices: DP 2 x 7/8 x 9,728 = 17,024
    sent = {}
    for zero in range(4):
        r = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=8,
                  zero=zero)  # fmt: skip
        sent[zero] = r.communication.sent
    assert sent[0] == sent[1] == sent[2] == 2 * 7 / 8 * 9728 == 17_024
    assert sent[3] == 3 * 7 / 8 * 9728 == 1.5 * sent[0]  # 25,536
    r = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=8, zero=3)
    assert [(x.kind, x.what, x.phase) for x in r.communication.collectives] == [
        ("all-gather", "weights", "forward"), ("all-gather", "weights", "backward"),
        ("reduce-scatter", "gradients", "backward")]  # fmt: skip


def test_accumulation_repeats_what_runs_per_micro_batch() -> None:
    # k = 3: DP all-reduces once per step (17,024); ZeRO-2 reduce-scatters per micro-batch
    # (3 x 7/8 x 9,728 = 25,536) and all-gathers the updated weights once (8,512): 34,048;
    # ZeRO-3 does all three per micro-batch: 3 x 25,536 = 76,608
    def sent(zero: int) -> float:
        return train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=8,
                     zero=zero, accumulate=3).communication.sent  # fmt: skip

    assert (sent(0), sent(2), sent(3)) == (17_024, 34_048, 76_608)


def test_per_layer_traffic_from_the_module_tree() -> None:
    # units: the rest (inp 512 + head 256 = 768 parameters) and layers.0..3 (1,024 each);
    # DP over 8: 17,024 x 768 / 4,864 = 2,688 for the rest, 17,024 x 1,024 / 4,864 = 3,584 each
    r = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=8)
    units = [(u.module, u.params, u.bytes, u.sent) for u in r.communication.layers]
    assert units == [("(outside the layers)", 768, 1536, 2688)] + [
        (f"layers.{i}", 1024, 2048, 3584) for i in range(4)]  # fmt: skip
    assert sum(u.sent for u in r.communication.layers) == r.communication.sent


def test_the_time_from_a_link_bandwidth_and_latency() -> None:
    link = Link("l", "a link", "intra", 100e9, 1e-6, "test")
    cats = {"weights": 10**9, "gradients": 10**9}
    r = train(nn.Linear(1000, 1, bias=False), (2, 1000), optimizer="sgd")
    c = step_communication(cats, r.report, devices=8, zero=0, accumulate=1, ring=link)
    # all-reduce of 1 GB over 8: 2 x 7/8 x 1e9 = 1.75e9 B at 100e9 B/s = 17.5 ms,
    # plus 2 x 7 = 14 steps x 1 us = 14 us
    assert c.time_s == pytest.approx(1.75e9 / 100e9 + 14e-6, rel=1e-12)
    # within a node of 8 the chip's NVLink 4: 450 GB/s per direction, 2 us; 16 devices cross
    # nodes: the NIC's 50 GB/s and 5 us
    assert plan_link("nvlink4", "ib-ndr", 8, 8).bandwidth == 450e9
    far = plan_link("nvlink4", "ib-ndr", 16, 8)
    assert (far.name, far.bandwidth, far.latency) == ("nvlink4+ib-ndr", 50e9, 5e-6)


def test_step_time_is_compute_plus_what_is_not_overlapped() -> None:
    kw = {"optimizer": "sgd", "devices": 4, "hardware": H100}
    none = train(nn.Linear(1000, 1, bias=False), (2, 1000), **kw)
    t, c = none.time, none.communication
    # 4 devices on one node: NVLink 4; all-reduce of 4,000 B: 6 steps x 2 us + 6,000 / 450e9
    assert c.time_s == pytest.approx(6 * 2e-6 + 6000 / 450e9, rel=1e-12)
    assert t.step_s == pytest.approx(t.compute_s + c.time_s, rel=1e-12)
    assert none.throughput == pytest.approx(2 / t.step_s)  # samples per device per second
    full = train(nn.Linear(1000, 1, bias=False), (2, 1000), overlap="full", **kw)
    hidden = max(0.0, c.time_s - full.time.compute_s)
    assert full.time.communication_s == pytest.approx(hidden)
    assert full.time.step_s == pytest.approx(max(full.time.compute_s, c.time_s))


def test_bad_plans_fail_before_tracing() -> None:
    m = nn.Linear(4, 2)
    with pytest.raises(InputError, match="need an inter-node link"):
        train(m, (1, 4), devices=16, hardware=load_spec("a100-pcie-80gb"))
    with pytest.raises(InputError, match="names no intra-node link"):
        train(m, (1, 4), devices=2, hardware=load_spec("t4"))
    with pytest.raises(InputError, match="unknown overlap 'some'"):
        train(m, (1, 4), devices=2, overlap="some")
    with pytest.raises(InputError, match="GPUs per node"):
        train(m, (1, 4), devices=2, gpus_per_node=0)
    with pytest.raises(InputError, match="unknown link 'nvlink9'"):
        train(m, (1, 4), devices=2, intra="nvlink9")


def test_hybrid_shard_communication_by_hand() -> None:
    # 4,864 parameters in bf16: Psi = 9,728 B; 16 devices (2 nodes of 8), ZeRO-3 sharded
    # within groups of 8: per micro-batch all-gather the weights in the forward and the
    # backward and reduce-scatter the gradients within the node: 7/8 x 9,728 = 8,512 each over
    # NVLink (7 steps x 2 us + 8,512 / 450e9); then all-reduce each device's 1/8 shard
    # (9,728 / 8 = 1,216 B) across the 2 groups over the NIC: 2 x 1/2 x 1,216 = 1,216 B
    # (2 steps x 5 us + 1,216 / 50e9)
    r = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=16, zero=3,
              shard_group=8, hardware=H100)  # fmt: skip
    c = r.communication
    assert [(x.kind, x.what, x.bytes, x.group, x.sent) for x in c.collectives] == [
        ("all-gather", "weights", 9728, 8, 8512), ("all-gather", "weights", 9728, 8, 8512),
        ("reduce-scatter", "gradients", 9728, 8, 8512),
        ("all-reduce", "gradient shard", 1216, 2, 1216)]  # fmt: skip
    near = 7 * 2e-6 + 8512 / 450e9
    assert c.time_s == pytest.approx(3 * near + 2 * 5e-6 + 1216 / 50e9, rel=1e-12)
    assert c.shard_group == 8 and c.to_dict()["shard_group"] == 8
    # the model states: / 8, not / 16: weights 9,728 / 8 = 1,216
    assert r.sharded.weights == 1216 and r.sharded.group == 8
    # "node": one node's replicas, 8
    same = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=16,
                 zero=3, shard_group="node", hardware=H100)  # fmt: skip
    assert same.communication.collectives == c.collectives
    # ZeRO-2 hybrid, k = 2: reduce-scatter per micro-batch in the group (2 x 8,512), the
    # shard's all-reduce across groups once (1,216), the updated weights' all-gather once (8,512)
    z2 = train(Layers(), (4, 16), optimizer="adamw", precision="bf16-mixed", devices=16, zero=2,
               shard_group=8, accumulate=2)  # fmt: skip
    assert [(x.kind, x.count, x.sent) for x in z2.communication.collectives] == [
        ("reduce-scatter", 2, 17_024), ("all-reduce", 1, 1216), ("all-gather", 1, 8512)]  # fmt: skip


def test_the_shard_all_reduce_across_node_groups_is_a_ring_over_the_nics() -> None:
    # 32 devices, groups of one node (8): the all-reduce across the 4 groups runs one device
    # per node, a ring over the NICs, which the hierarchical algorithm cannot beat
    r = train(Layers(), (4, 16), optimizer="sgd", devices=32, zero=3, shard_group=8,
              hardware=H100)  # fmt: skip
    shard = r.communication.collectives[-1]
    assert (shard.what, shard.group, shard.algorithm) == ("gradient shard", 4, "ring")


def test_the_data_parallel_group_under_tensor_parallel_is_strided() -> None:
    # tensor 2 on 32 devices: 16 replicas 2 devices apart, 4 per node of 8, over 4 nodes; the
    # gradients' hierarchical all-reduce: reduce-scatter over 4 in the node, all-reduce of the
    # 1/4 shard over the 4 nodes, all-gather over 4
    from parallel_models import Tiny

    r = train(Tiny(), "2x16:int64", optimizer="sgd", devices=32, tensor=2, hardware=H100)
    x = r.communication.collectives[0]
    assert (x.what, x.group, x.algorithm) == ("gradients", 16, "hierarchical")
    assert [(s.group, s.link, s.sent) for s in x.stages] == [
        (4, "nvlink4", 3 / 4 * x.bytes), (4, "ib-ndr", 2 * 3 / 4 * x.bytes / 4),
        (4, "nvlink4", 3 / 4 * x.bytes)]  # fmt: skip
