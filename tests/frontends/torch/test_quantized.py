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



class _Static(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        q = torch.ao.quantization
        self.quant, self.dequant = q.QuantStub(), q.DeQuantStub()
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(self.quant(x)))
        return self.dequant(self.fc(x.reshape(x.shape[0], -1)))


@pytest.fixture
def static_model() -> nn.Module:
    q = torch.ao.quantization
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "x86", "qnnpack") if e in engines), None)
    if engine is None:
        pytest.skip("no quantised engine in this torch build")
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    model = _Static().eval()
    model.qconfig = q.get_default_qconfig(engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q.prepare(model, inplace=True)
        model(torch.randn(4, 3, 8, 8))
        q.convert(model, inplace=True)
    return model


def test_statically_quantised_model_is_counted_whole(static_model) -> None:  # noqa: ANN001
    report = modelmeter.analyze(static_model, "1x3x8x8")
    assert report.unsupported == {}  # quantize, conv2d, linear, dequantize all have formulas
    ops = report.by_operator()
    # quantize_per_tensor: 1x3x8x8 = 192 elements x 5 (divide, round, add, clamp 2) = 960
    assert (ops["aten.quantize_per_tensor"].cost.flops) == 960
    # conv 3->8, 3x3, out 1x8x6x6 = 288 outputs: MACs 288 x 3 x 9 = 7,776; FLOPs 2 x 7,776
    # (with the bias) + 192 zero-point subtractions of the input + 5 x 288 requantising
    conv = ops["quantized.conv2d"].cost
    assert (conv.macs, conv.flops) == (7_776, 15_552 + 192 + 1_440)
    # bytes: the uint8 input 192 + int8 weights 216 + float32 bias 8 x 4 = 32; out 288 uint8
    assert (conv.bytes_read, conv.bytes_written) == (192 + 216 + 32, 288)
    # linear 288 -> 10: MACs 2,880; FLOPs 2 x 2,880 + 288 + 5 x 10
    fc = ops["quantized.linear"].cost
    assert (fc.macs, fc.flops) == (2_880, 5_760 + 288 + 50)
    # dequantize: 10 outputs x 2 ((x - zero_point) * scale)
    assert ops["aten.dequantize"].cost.flops == 20
    two = modelmeter.analyze(static_model, "1x3x8x8", convention="2mac").by_operator()
    assert two["quantized.conv2d"].cost.flops == 2 * 7_776  # 2mac: 2 x MACs only
