"""ZeRO's per-device model states, from a traced step: the ZeRO paper's table."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from modelmeter.analysis.sharding import zero_states
from modelmeter.errors import InputError
from modelmeter.usecases.train import train


def _seven_and_a_half_billion() -> nn.Module:
    # three 50,000 x 50,000 weights: 3 x 2.5e9 = 7.5e9 parameters (Psi), built on meta
    with torch.device("meta"):
        return nn.Sequential(*(nn.Linear(50_000, 50_000, bias=False) for _ in range(3)))


def test_the_zero_paper_table_from_a_7_5b_model() -> None:
    # Rajbhandari et al. 2020, Figure 1: Psi = 7.5B, Nd = 64, mixed-precision Adam (K = 12)
    start = time.perf_counter()
    r = train(_seven_and_a_half_billion(), (1, 50_000), optimizer="adam",
              precision="bf16-mixed")  # fmt: skip
    assert time.perf_counter() - start < 30  # meta: no memory, seconds
    psi = 7_500_000_000
    assert r.params == (psi, psi)
    assert r.model_states == 16 * psi  # (2 + 2 + K) Psi = 120 GB
    c = r.categories
    # plain data parallel: (2 + 2 + 12) x 7.5e9 = 120e9 B = 120 GB
    assert zero_states(c, 64, 0).total == 120_000_000_000
    # ZeRO-1 (P_os): 2 Psi + 2 Psi + 12 Psi / 64 = 15e9 + 15e9 + 1.40625e9 = 31.40625 GB
    assert zero_states(c, 64, 1).total == 31_406_250_000
    # ZeRO-2 (P_os+g): 2 Psi + 14 Psi / 64 = 15e9 + 1.640625e9 = 16.640625 GB
    assert zero_states(c, 64, 2).total == 16_640_625_000
    # ZeRO-3 (P_os+g+p): 16 Psi / 64 = 1.875 GB
    assert zero_states(c, 64, 3).total == 1_875_000_000
    # the paper rounds to 120, 31.4, 16.6 and 1.9 GB
    assert [round(zero_states(c, 64, s).total / 1e9, 1) for s in range(4)] == [
        120.0, 31.4, 16.6, 1.9
    ]  # fmt: skip


def test_a_partitioned_category_rounds_up_and_buffers_are_replicated() -> None:
    cats = {"weights": 10, "buffers": 7, "master weights": 0, "gradients": 10,
            "optimizer states": 20}  # fmt: skip
    # 3 devices, ZeRO-3: ceil(10/3) = 4 weights, 4 gradients, ceil(20/3) = 7; buffers 7
    s = zero_states(cats, 3, 3)
    assert (s.weights, s.buffers, s.gradients, s.optimizer, s.total) == (4, 7, 4, 7, 22)
    with pytest.raises(InputError, match="ZeRO stage 4"):
        zero_states(cats, 3, 4)
    with pytest.raises(InputError, match="devices"):
        zero_states(cats, 0, 1)


def test_hybrid_sharding_divides_by_the_group_not_the_devices() -> None:
    # the ZeRO paper's 7.5B model, mixed-precision Adam, on 64 devices sharded within groups
    # of 8 (one node): weights 2 Psi = 15 GB, gradients 15 GB, optimizer 12 Psi = 90 GB, each
    # / 8: 1.875 + 1.875 + 11.25 = 15 GB per device (full shard over 64: 1.875 GB)
    psi = 7_500_000_000
    cats = {"weights": 2 * psi, "buffers": 0, "master weights": 4 * psi, "gradients": 2 * psi,
            "optimizer states": 8 * psi}  # fmt: skip
    z = zero_states(cats, 64, 3, group=8)
    assert (z.weights, z.gradients, z.optimizer, z.total) == (
        1_875_000_000, 1_875_000_000, 11_250_000_000, 15_000_000_000)  # fmt: skip
    assert z.group == 8 and z.to_dict()["shard_group"] == 8
    # ZeRO-2 within groups of 8: the weights replicated, 15 + 1.875 + 11.25 = 28.125 GB
    assert zero_states(cats, 64, 2, group=8).total == 28_125_000_000
    assert zero_states(cats, 64, 3, group=64).total == zero_states(cats, 64, 3).total


def test_bad_shard_groups() -> None:
    cats = {"weights": 8, "buffers": 0, "master weights": 0, "gradients": 8,
            "optimizer states": 8}  # fmt: skip
    with pytest.raises(InputError, match="needs a ZeRO stage"):
        zero_states(cats, 8, 0, group=4)
    with pytest.raises(InputError, match="shard group 3 does not divide the 8"):
        zero_states(cats, 8, 3, group=3)
    with pytest.raises(InputError, match="whole number >= 1"):
        zero_states(cats, 8, 3, group=0)
