"""Static quantisation's elementwise and joining ops (``quantized.add``, ``cat``, ...): by hand-
built calls, through a traced function on real quantised tensors, and a converted torchvision
quantizable model with random weights that must leave no op unsupported."""

from __future__ import annotations

import warnings

import pytest
import torch

import modelmeter

Q = "uint8"  # a quint8 tensor as the tracer records it: its storage dtype


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "x86") if e in engines), None)
    if engine is None:
        pytest.skip("no fbgemm/x86 quantised engine in this torch build")
    torch.backends.quantized.engine = engine
    return engine


def test_binary_ops_requantise_each_output(kit) -> None:  # noqa: ANN001
    a, b = kit.t(1, 4, 3, 3, dtype=Q), kit.t(1, 4, 3, 3, dtype=Q)
    out = kit.t(1, 4, 3, 3, dtype=Q)
    for op in ("quantized.add", "quantized.add_relu", "quantized.mul", "quantized.mul_relu"):
        c = kit.cost(op, {"qa": a, "qb": b, "scale": 0.1, "zero_point": 3}, out)
        # 36 outputs x (dequantise a 2 + dequantise b 2 + the op 1 + quantise 5 = 10) = 360
        assert (c.macs, c.flops) == (0, 360), op
        # bytes: two 36-element uint8 inputs read (72), 36 written
        assert (c.bytes_read, c.bytes_written) == (72, 36), op


def test_scalar_ops(kit) -> None:  # noqa: ANN001
    a, out = kit.t(2, 5, dtype=Q), kit.t(2, 5, dtype=Q)
    for op in ("quantized.add_scalar", "quantized.mul_scalar_relu"):
        # 10 outputs x (dequantise 2 + the op 1 + quantise 5 = 8) = 80
        assert kit.cost(op, {"qa": a, "b": 2.0}, out).flops == 80


def test_cat_requantises_every_output_element(kit) -> None:  # noqa: ANN001
    parts = (kit.t(1, 2, 4, 4, dtype=Q), kit.t(1, 6, 4, 4, dtype=Q))
    out = kit.t(1, 8, 4, 4, dtype=Q)
    c = kit.cost("quantized.cat", {"qx": parts, "dim": 1, "scale": 0.1, "zero_point": 0}, out)
    # 1x8x4x4 = 128 outputs x (dequantise 2 + quantise 5 = 7) = 896
    assert (c.macs, c.flops) == (0, 896)
    # bytes: read 32 + 96 uint8 elements, write 128
    assert (c.bytes_read, c.bytes_written) == (128, 128)


@pytest.mark.parametrize(
    ("op", "args", "per"),
    [
        ("quantized.hardswish", {}, 2 + 5 + 5),  # dequantise, +3 2 clamps *x /6, quantise
        ("quantized.sigmoid", {}, 2 + 4 + 5),  # dequantise, neg exp +1 1/, quantise
        ("quantized.leaky_relu", {"negative_slope": 0.1}, 2 + 2 + 5),  # *a, select
        ("quantized.elu", {}, 2 + 4 + 5),  # exp -1 *alpha select
        ("quantized.elu", {"scale": 1.0507, "input_scale": 1}, 2 + 5 + 5),  # + *scale
        ("quantized.celu", {"alpha": 0.5}, 2 + 5 + 5),  # elu + x/alpha
        ("quantized.relu6", {}, 2),  # integers, same zero point: max then min
        ("quantized.threshold", {"threshold": 0.1, "value": 0.0}, 1),  # compare-and-select
        ("quantized.clamp", {"min": 0.0, "max": None}, 1),  # one bound
        ("quantized.clamp", {"min": 0.0, "max": 1.0}, 2),  # both bounds
    ],
)
def test_quantised_activations(kit, op: str, args: dict, per: int) -> None:  # noqa: ANN001
    x, out = kit.t(3, 4, dtype=Q), kit.t(3, 4, dtype=Q)
    assert kit.cost(op, {"qx": x, **args}, out).flops == 12 * per  # 3x4 = 12 elements


def test_quantised_batch_norm(kit) -> None:  # noqa: ANN001
    x, out = kit.t(2, 3, 4, 4, dtype=Q), kit.t(2, 3, 4, 4, dtype=Q)
    gamma, beta = kit.t(3, weight=True), kit.t(3, weight=True)
    mean, var = kit.t(3, weight=True), kit.t(3, weight=True)
    args = {"qx": x, "weight": gamma, "bias": beta, "mean": mean, "var": var, "eps": 1e-5}
    c = kit.cost("quantized.batch_norm2d", args, out)
    # 2x3x4x4 = 96 elements x (dequantise 2 + x*scale+shift 2 + quantise 5 = 9) = 864,
    # + 3 channels x (var+eps, rsqrt, *gamma, mean*scale, beta-) 5 = 15: 879
    assert (c.macs, c.flops) == (0, 864 + 15)
    no_gamma = kit.cost("quantized.batch_norm2d_relu", {**args, "weight": None}, out)
    assert no_gamma.flops == 864 + 3 * 4  # without gamma: 4 per channel


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_traced_quantised_functions_are_counted() -> None:
    _engine()
    qops = torch.ops.quantized

    def fn(x: torch.Tensor) -> torch.Tensor:
        qx = torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)
        y = qops.add(qx, qx, 0.1, 10)
        y = qops.cat([y, qops.mul(qx, qx, 0.2, 3)], 1, 0.2, 3)
        return qops.hardswish(y, 0.1, 8).dequantize()

    report = modelmeter.analyze(fn, torch.randn(1, 4, 2, 2), mode="real")
    assert report.unsupported == {}
    ops = report.by_operator()
    # add and mul on 1x4x2x2 = 16 elements: 16 x 10 = 160 each
    assert ops["quantized.add"].cost.flops == 160 and ops["quantized.mul"].cost.flops == 160
    # cat to 1x8x2x2 = 32 elements x 7 = 224; hardswish on them: 32 x 12 = 384
    assert ops["quantized.cat"].cost.flops == 224
    assert ops["quantized.hardswish"].cost.flops == 384


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mobilenet_v3_large"])
def test_converted_torchvision_quantizable_model_has_no_unsupported_op(name: str) -> None:
    tq = pytest.importorskip("torchvision.models.quantization")
    engine = _engine()
    q = torch.ao.quantization
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        model = getattr(tq, name)(weights=None, quantize=False).eval()
        model.fuse_model()
        model.qconfig = q.get_default_qconfig(engine)
        q.prepare(model, inplace=True)
        model(torch.randn(2, 3, 64, 64))  # calibrate the observers
        q.convert(model, inplace=True)
    report = modelmeter.analyze(model, "1x3x64x64")
    assert report.unsupported == {}
    ops = report.by_operator()
    blocks = {"resnet18": ("quantized.add_relu", 8), "mobilenet_v2": ("quantized.add", 10),
              "mobilenet_v3_large": ("quantized.hardswish", 21)}  # fmt: skip
    op, calls = blocks[name]  # resnet18: 8 residual adds; mobilenet_v2: 10; v3: 21 hardswish
    assert ops[op].calls == calls
