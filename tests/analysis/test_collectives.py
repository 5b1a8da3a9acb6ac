"""Collectives over nodes: the flat ring against the two-level (hierarchical) algorithm, bytes
and times derived by hand beside each figure."""

from __future__ import annotations

import pytest

from modelmeter.analysis.collectives import fabric
from modelmeter.errors import InputError

GB = 10**9
# NVLink 4: 450e9 B/s per direction, 2 us per step; InfiniBand NDR: 50e9 B/s, 5 us
NODES_OF_8 = fabric("nvlink4", "ib-ndr", 8)


def test_all_reduce_of_1_gb_over_16_devices_in_2_nodes_of_8() -> None:
    ring = NODES_OF_8.ring("all-reduce", GB, 16)
    # one ring over both nodes runs at its slowest hop, the NIC: 2 x 15/16 x 1 GB = 1.875 GB
    # at 50e9 B/s = 37.5 ms, plus 2 x 15 = 30 steps x 5 us = 150 us
    assert ring.sent == 1.875e9
    assert ring.time_s == pytest.approx(1.875e9 / 50e9 + 30 * 5e-6, rel=1e-12)  # 37.65 ms
    two = NODES_OF_8.hierarchical("all-reduce", GB, 16)
    # reduce-scatter in the node: 7/8 x 1 GB = 875 MB over NVLink (1.944 ms) in 7 steps of 2 us;
    # all-reduce of the 1/8 shard (125 MB) over 2 nodes: 2 x 1/2 x 125 MB = 125 MB over the
    # NIC (2.5 ms) in 2 steps of 5 us; all-gather in the node: as the reduce-scatter
    assert [(s.kind, s.group, s.link, s.sent, s.steps) for s in two.stages] == [
        ("reduce-scatter", 8, "nvlink4", 875e6, 7), ("all-reduce", 2, "ib-ndr", 125e6, 2),
        ("all-gather", 8, "nvlink4", 875e6, 7)]  # fmt: skip
    assert two.time_s == pytest.approx(
        2 * (875e6 / 450e9 + 7 * 2e-6) + 125e6 / 50e9 + 2 * 5e-6, rel=1e-12)  # 6.427 ms
    # the same bytes in all: 2 x 875 MB + 125 MB = 1.875 GB = 2 (N-1)/N x 1 GB
    assert two.sent == ring.sent
    assert NODES_OF_8.price("all-reduce", GB, 16).algorithm == "hierarchical"  # auto: faster
    forced = fabric("nvlink4", "ib-ndr", 8, "ring").price("all-reduce", GB, 16)
    assert (forced.algorithm, forced.time_s) == ("ring", ring.time_s)


def test_reduce_scatter_and_all_gather_over_4_nodes() -> None:
    # 32 devices = 4 nodes of 8, 1 GB: reduce-scatter in the node 7/8 GB, then across the 4
    # nodes 3/4 of the 125 MB shard = 93.75 MB: 968.75 MB = 31/32 GB, the ring's bytes
    rs = NODES_OF_8.hierarchical("reduce-scatter", GB, 32)
    assert [(s.kind, s.group, s.sent, s.steps) for s in rs.stages] == [
        ("reduce-scatter", 8, 875e6, 7), ("reduce-scatter", 4, 93.75e6, 3)]  # fmt: skip
    assert rs.sent == 31 / 32 * GB
    ag = NODES_OF_8.hierarchical("all-gather", GB, 32)  # the mirror image: across, then within
    assert [(s.kind, s.group) for s in ag.stages] == [("all-gather", 4), ("all-gather", 8)]
    assert ag.time_s == pytest.approx(rs.time_s, rel=1e-12)


def test_groups_with_a_stride_and_the_nics() -> None:
    # a data-parallel group of 8 replicas under tensor parallel 4 (stride 4) on nodes of 8:
    # 2 replicas per node, over 4 nodes
    assert NODES_OF_8.span(8, 4) == (2, 4)
    assert NODES_OF_8.span(8, 8) == (1, 8)  # stride of a node: one per node
    assert NODES_OF_8.span(8, 1) == (8, 1)  # within one node: the ring on NVLink
    assert NODES_OF_8.price("all-reduce", GB, 8).algorithm == "ring"
    assert NODES_OF_8.flat(8).name == "nvlink4"
    # 12 devices over nodes of 8 do not split evenly: no hierarchical algorithm, the ring
    assert NODES_OF_8.hierarchical("all-reduce", GB, 12) is None
    # 2 NICs for 8 GPUs: each GPU gets 2/8 of 50e9 = 12.5e9 B/s; the 125 MB shard of the
    # 16-device all-reduce takes 10 ms over it
    shared = fabric("nvlink4", "ib-ndr", 8, nics_per_node=2).hierarchical("all-reduce", GB, 16)
    assert shared.stages[1].time_s == pytest.approx(125e6 / 12.5e9 + 2 * 5e-6, rel=1e-12)


def test_bad_fabric_options() -> None:
    with pytest.raises(InputError, match="unknown collective algorithm 'tree'"):
        fabric("nvlink4", "ib-ndr", 8, "tree")
    with pytest.raises(InputError, match="unknown link 'nvlink9'"):
        fabric("nvlink9", None)
    with pytest.raises(InputError, match="need an inter-node link"):
        fabric("nvlink4", None, 8).price("all-reduce", GB, 16)
