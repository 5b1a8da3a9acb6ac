"""Quantised ONNX models: onnxruntime's own quantisers applied to a small exported network
(int8 sizes and integer op counts), and each quantised-op formula on a hand-built graph."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import analyze, export, init, model, vi  # noqa: E402

U8, I8, I32 = TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
node = helper.make_node


class Net(torch.nn.Module):
    """Conv 3->8 (3x3, pad 1) + ReLU on 8x8, then Linear 512->10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.relu(self.conv(x)), 1))


@pytest.fixture(scope="module")
def float_model(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("quant") / "net.onnx"
    export(Net().eval(), (torch.randn(1, 3, 8, 8),), path, dynamo=False, input_names=["x"])
    return str(path)


# float model: params conv 8*3*3*3 + 8 = 224, fc 512*10 + 10 = 5,130 -> 5,354;
# MACs conv 512 outputs * 27 = 13,824 + fc 10 * 512 = 5,120 -> 18,944
PARAMS, MACS = 5354, 18944


def test_float_reference(float_model) -> None:
    r = analyze(float_model)
    assert (r.total().params, r.total().cost.macs) == (PARAMS, MACS)
    assert r.size_by_dtype()["native"] == 4 * PARAMS


def test_quantize_dynamic(float_model, tmp_path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path / "dyn.onnx"
    quantize_dynamic(float_model, str(out), weight_type=QuantType.QInt8)
    r = analyze(str(out))
    t = r.total()
    ops = r.by_operator()
    assert {"onnx.ConvInteger", "onnx.MatMulInteger", "onnx.DynamicQuantizeLinear"} <= set(ops)
    assert (t.params, t.cost.macs) == (PARAMS, MACS)
    # int8 weights 216 + 5,120 bytes, float32 biases (8 + 10)*4 = 72: 5,408 bytes natively
    assert r.size_by_dtype()["native"] == 216 + 5120 + 72
    # the two int8 weight zero points are buffers (1 element each)
    assert t.buffers == 2
    # weight bytes read: int8 weights 5,336 + zero points 2 + biases 72 = 5,410
    assert t.cost.weight_bytes == 5410
    # DynamicQuantizeLinear of the 192-element input: 7*192 + 7 = 1,351
    assert ops["onnx.DynamicQuantizeLinear"].calls == 2
    assert r.by_module()  # rows exist
    conv_q = [rec for n in r.modules() for rec in n.ops
              if rec.op == "onnx.DynamicQuantizeLinear" and rec.shapes == ((1, 3, 8, 8),)]
    assert conv_q[0].cost.flops == 1351


def test_quantize_static_qoperator(float_model, tmp_path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.it = iter([{"x": rng.standard_normal((1, 3, 8, 8), dtype=np.float32)}])

        def get_next(self):  # noqa: ANN201
            return next(self.it, None)

    out = tmp_path / "qop.onnx"
    quantize_static(float_model, str(out), Reader(), quant_format=QuantFormat.QOperator)
    r = analyze(str(out))
    t = r.total()
    ops = r.by_operator()
    assert r.unsupported == {}
    assert (t.params, t.cost.macs) == (PARAMS, MACS)
    # int8 weights 5,336 bytes + int32 biases 18*4 = 72
    assert r.size_by_dtype()["native"] == 5336 + 72
    # QLinearConv: 2*13,824 (int32 bias) + 192 input zero-point subtractions + 5*512
    # requantisation = 30,400 (the ReLU is fused into it by the quantiser)
    assert ops["onnx.QLinearConv"].cost.flops == 30400
    # QGemm: 2*5,120 (bias) + 512 zero-point subtractions + 5*10 requantisation = 10,802
    assert ops["onnx.com.microsoft.QGemm"].cost.flops == 10802
    # 8-bit activations: QLinearConv reads x (192 bytes), weights (216), bias (32) and
    # 6 scalar scales/zero points (3 float32 + 3 uint8/int8 = 15 bytes): 455
    assert ops["onnx.QLinearConv"].cost.bytes_read == 192 + 216 + 32 + 15
    assert ops["onnx.QLinearConv"].cost.bytes_written == 512
    # integer MAC ops compute in their integer type, so a roofline uses the int8 peak
    dtypes = {o.op: o.dtype for n in r.modules() for o in n.ops if o.cost.macs}
    assert dtypes["onnx.QLinearConv"] in ("uint8", "int8")
    assert dtypes["onnx.com.microsoft.QGemm"] in ("uint8", "int8")


def test_quant_formulas_by_hand() -> None:
    # QuantizeLinear on 2x3: 5 per element = 30; DequantizeLinear with a zero point 2 per
    # element = 12, without 1 per element = 6
    m = model(
        [
            node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
            node("DequantizeLinear", ["q", "s", "zp"], ["d"]),
            node("DequantizeLinear", ["q", "s"], ["e"]),
        ],
        [vi("x", [2, 3])],
        [vi("d", None), vi("e", None)],
        [init("s", (), value=0.1), init("zp", (), np.uint8, 3)],
    )
    ops = analyze(m).by_operator()
    assert ops["onnx.QuantizeLinear"].cost.flops == 30
    assert ops["onnx.QuantizeLinear"].cost.bytes_written == 6  # uint8
    assert ops["onnx.DequantizeLinear"].cost.flops == 12 + 6
    # QLinearMatMul a (uint8 2x4, activation) @ b (int8 4x3, weight): MACs 24, integer ops
    # (2*4 - 1)*6 = 42 + 8 zero-point subtractions of a + 5*6 requantisation = 80;
    # MatMulInteger on the same: 42 + 8 = 50 (int32 output, no requantisation)
    m = model(
        [
            node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"]),
            node("MatMulInteger", ["a", "b", "za", "zb"], ["z"]),
        ],
        [vi("a", [2, 4], U8)],
        [vi("y", None), vi("z", None)],
        [init("b", (4, 3), np.int8, 1), init("sa", (), value=0.1), init("sb", (), value=0.1),
         init("sy", (), value=0.1), init("za", (), np.uint8, 0), init("zb", (), np.int8, 0),
         init("zy", (), np.uint8, 0)],
    )
    r = analyze(m)
    ops = r.by_operator()
    assert (ops["onnx.QLinearMatMul"].cost.macs, ops["onnx.QLinearMatMul"].cost.flops) == (24, 80)
    assert ops["onnx.MatMulInteger"].cost.flops == 50
    assert ops["onnx.MatMulInteger"].cost.bytes_written == 6 * 4  # int32
    # params: b (12 int8); buffers: the scales and zero points read in quantisation slots (6)
    assert (r.total().params, r.total().buffers, r.size_by_dtype()["native"]) == (12, 6, 12)
    # ConvInteger x (uint8 1x2x3x3) with w (int8 2x2x1x1), zero point of x given:
    # MACs 18 outputs * 2 = 36; 2*36 - 18 = 54 + 18 subtractions = 72
    m = model(
        [node("ConvInteger", ["x", "w", "zx"], ["y"])],
        [vi("x", [1, 2, 3, 3], U8)],
        [vi("y", None)],
        [init("w", (2, 2, 1, 1), np.int8, 1), init("zx", (), np.uint8, 0)],
    )
    c = analyze(m).total().cost
    assert (c.macs, c.flops) == (36, 72)


def test_quantize_dynamic_lstm(tmp_path) -> None:
    # onnxruntime's quantize_dynamic turns an LSTM into com.microsoft.DynamicQuantizeLSTM.
    # Before: unsupported (its MACs missing) and its int8 W and R read as constants, so the
    # report had 27,933 of a bidirectional 2-layer LSTM + GRU's 175,381 parameters.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7).eval()  # I=5, H=7, one direction, both biases
    path, out = tmp_path / "lstm.onnx", tmp_path / "lstm_q.onnx"
    export(lstm, (torch.randn(3, 2, 5),), path, dynamo=False, fold=True, input_names=["x"])
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8)
    r = analyze(str(out))
    assert not r.unsupported
    assert "onnx.com.microsoft.DynamicQuantizeLSTM" in r.by_operator()
    # params as the float LSTM: W 28*5 + R 28*7 + B 56 = 392 (PyTorch: 4*7*(5+7) + 2*28 = 392)
    assert r.total().params == 392
    # T=3, B=2 (6 rows): MACs 6 * 28 * (5 + 7) = 2,016; exact FLOPs as the float LSTM
    # 2*2,016 + 6*7*22 = 4,956, + quantising the 6 input rows (6*5) and the 3 steps' hidden
    # states (3*2*7) at 7 per element = 504, + dequantising both products 2*6*28 = 336: 5,796
    op = r.by_operator()["onnx.com.microsoft.DynamicQuantizeLSTM"]
    assert (op.calls, op.cost.macs, op.cost.flops) == (1, 2016, 5796)
