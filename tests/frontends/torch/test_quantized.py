"""Quantised modules keep their weights packed (``_packed_params``), outside the parameter
and buffer tables: they are counted as parameters at their real dtypes, and read as weights."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import modelmeter


@pytest.fixture
def dynamic_linear() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantize_dynamic's deprecation notice
        return torch.ao.quantization.quantize_dynamic(
            nn.Sequential(nn.Linear(8, 4)), {nn.Linear}, dtype=torch.qint8
        )


def test_dynamically_quantised_linear_counts_its_packed_weights(dynamic_linear) -> None:  # noqa: ANN001
    report = modelmeter.analyze(dynamic_linear, "2x8")
    total = report.total()
    # 8*4 int8 weights + 4 float32 biases = 36 parameters, none trainable, all read
    assert (total.params, total.trainable_params, total.unused_params) == (36, 0, 0)
    # weight bytes: 32 weights x 1 byte (int8) + 4 biases x 4 bytes (float32) = 48
    assert total.cost.weight_bytes == 32 * 1 + 4 * 4
    # 2 rows x 8 x 4 = 64 MACs; FLOPs: 2*64 (with the bias) + 7 per input element to find
    # the range and quantise (2x8 = 16 elements) + 1 dequantise per output (2x4 = 8)
    assert (total.cost.macs, total.cost.flops) == (64, 128 + 7 * 16 + 8)
    # bytes read: the float32 input 2x8x4 = 64, and the 48 weight bytes
    assert total.cost.bytes_read == 64 + 48

