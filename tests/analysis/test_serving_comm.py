"""The collectives of tensor-parallel serving (analysis/serving_comm.py), by hand: NVLink 4
is 450 GB/s per direction with 2 us per message step (hardware/links.py)."""

from __future__ import annotations

import pytest

from modelmeter.analysis.serving_comm import custom_kind, phase_comm, serving_fabric
from modelmeter.hardware.links import link

BW, LAT = 450e9, 2e-6
FAB = serving_fabric(link("nvlink4"))
# Llama-3-70B decode step, batch 8: the layer output 8 x 8,192 x 2 = 131,072 bytes; the
# last position's logits 8 x 128,256 x 2 = 2,052,096 bytes
LAYER, LOGITS = 131_072, 2_052_096


def test_ring() -> None:
    c = phase_comm(FAB, 8, 80, LAYER, LOGITS)
    # 2 x 80 + 1 = 161 all-reduces; a ring of 8: 2 x 7 = 14 steps and 2 x 7/8 x 131,072 =
    # 229,376 bytes sent: 28 us + 0.5097 us = 28.51 us each; the gather 7 steps and 7/8 x
    # 2,052,096 = 1,795,584 bytes
    each = 14 * LAT + 229_376 / BW
    assert each == pytest.approx(28.5097e-6, rel=1e-5)
    assert c.all_reduces == 161 and c.algorithm == "ring"
    assert c.time_s == pytest.approx(161 * each + 7 * LAT + 1_795_584 / BW, rel=1e-12)
    assert c.sent == 161 * 229_376 + 1_795_584


def test_custom_one_shot() -> None:
    c = phase_comm(FAB, 8, 80, LAYER, LOGITS, "custom")
    # 131,072 < 256 KB at T = 8: one-shot, 1 step, each device reading the 7 others'
    # buffers: 7 x 131,072 = 917,504 bytes, 2 us + 2.04 us = 4.04 us each (161 of them:
    # 0.65 ms against the ring's 4.59 ms); the logits gather stays a ring
    each = LAT + 917_504 / BW
    assert c.algorithm == "one-shot"
    assert c.time_s == pytest.approx(161 * each + 7 * LAT + 1_795_584 / BW, rel=1e-12)
    assert 161 * each == pytest.approx(0.6503e-3, rel=1e-3)


def test_custom_two_shot_and_ring_above_8mb() -> None:
    # 1 MiB at T = 8: two-shot, 2 steps and 2 x 7/8 x 1,048,576 = 1,835,008 bytes
    c = phase_comm(FAB, 8, 1, 1 << 20, 0, "custom")
    assert c.algorithm == "two-shot"
    assert c.time_s == pytest.approx(3 * (2 * LAT + 1_835_008 / BW), rel=1e-12)
    # a prefill's 268 MB: NCCL's ring, as with "ring"
    big = 8 * 2048 * 8192 * 2
    assert phase_comm(FAB, 8, 1, big, 0, "custom") == phase_comm(FAB, 8, 1, big, 0, "ring")


@pytest.mark.parametrize(
    ("nbytes", "t", "kind"),
    [
        (131_072, 8, "one-shot"),  # below 256 KB
        (300_000, 8, "two-shot"),  # 256 KB .. 8 MB at T > 4
        (300_000, 4, "one-shot"),  # below 512 KB at T <= 4
        (600_000, 4, "two-shot"),
        (5_000_000, 2, "one-shot"),  # two devices: always one-shot up to 8 MB
        (8 * 1024 * 1024 + 1, 2, "ring"),  # above vLLM's max_size: NCCL
    ],
)
def test_custom_kind(nbytes: int, t: int, kind: str) -> None:
    assert custom_kind(nbytes, t) == kind


def test_no_link_counts_bytes_only() -> None:
    c = phase_comm(serving_fabric(None), 2, 2, 512, 2_048)
    # 5 all-reduces of 512 on a ring of 2 (512 sent each) + the gather's 1,024
    assert c.time_s is None and c.sent == 5 * 512 + 1_024
