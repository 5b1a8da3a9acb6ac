"""Recurrent formulas: oneDNN LSTM layers (real CPU), cuDNN whole-RNN calls, fused CUDA
cells, ONNX RNNs -- and meta (decomposed) runs giving the same MACs and FLOPs as real ones."""

from __future__ import annotations

import pytest
from torch import nn

import modelmeter
from modelmeter.registry import Formula, OpCall, TensorMeta, Work, lookup

# LSTM(5 -> 7), input T=3 x B=2: per row and step 4*7*(5+7) = 336 MACs; 6 rows -> 2016.
# exact FLOPs with biases: 2*2016 + 6 rows * 7 * 22 elementwise = 4032 + 924 = 4956


def _both(model: nn.Module, shape: str) -> tuple[modelmeter.Report, modelmeter.Report]:
    meta = modelmeter.analyze(model, shape, mode="meta")
    real = modelmeter.analyze(model, shape, mode="real")
    assert not meta.unsupported and not real.unsupported
    return meta, real


def _pair(r: modelmeter.Report) -> tuple[int, int]:
    c = r.total().cost
    return c.macs, c.flops


def test_lstm_onednn_matches_meta() -> None:
    meta, real = _both(nn.LSTM(5, 7), "3x2x5")
    assert "aten.mkldnn_rnn_layer" in real.by_operator()
    assert _pair(meta) == _pair(real) == (2016, 4956)


def test_lstm_two_layers_bidirectional_batch_first() -> None:
    meta, real = _both(nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True), "2x3x5")
    assert real.by_operator()["aten.mkldnn_rnn_layer"].calls == 4
    # layer 0: 2 directions * 6 rows * 28*(5+7) = 4032; layer 1 (input 2*7 = 14):
    # 2 * 6 * 28*(14+7) = 7056 -> 11088 MACs
    # FLOPs: 2*11088 + 4 layer-directions * 6 rows * 7 * 22 = 22176 + 3696 = 25872
    assert _pair(meta) == _pair(real) == (11088, 25872)


def test_lstm_without_bias() -> None:
    meta, real = _both(nn.LSTM(5, 7, bias=False), "3x2x5")
    # each projection loses its bias add: 2*2016 - 2 * 6*28 + 924 = 4620
    assert _pair(meta) == _pair(real) == (2016, 4620)


@pytest.mark.filterwarnings("ignore:LSTM with projections")
def test_lstm_projection() -> None:
    meta, real = _both(nn.LSTM(5, 7, proj_size=4), "3x2x5")
    # per row: 28*5 (ih) + 28*4 (hh on the projected state) + 7*4 (projection) = 280; *6
    # FLOPs: ih 2*6*140 = 1680, hh 2*6*112 = 1344, gates 6*7*22 = 924,
    # projection without bias 2*6*28 - 6*4 = 312 -> 4260
    assert _pair(meta) == _pair(real) == (1680, 4260)


def test_gru_and_rnn_decompose_consistently() -> None:
    # GRU: 6 rows * 21*(5+7) = 1512 MACs; 2*1512 + 6*7*16 = 3696
    meta, real = _both(nn.GRU(5, 7), "3x2x5")
    assert _pair(meta) == _pair(real) == (1512, 3696)
    # RNN tanh: 6 * 7*12 = 504 MACs; 2*504 + 6*7*2 = 1092
    meta, real = _both(nn.RNN(5, 7), "3x2x5")
    assert _pair(meta) == _pair(real) == (504, 1092)


def _t(*shape: int, weight: bool = False, sid: int = 0) -> TensorMeta:
    return TensorMeta(shape, "float32", sid, weight)


def _run(target: str, args: dict, outputs: tuple, frontend: str = "aten", **kw) -> Work:  # noqa: ANN003
    entry = lookup(frontend, target)
    assert isinstance(entry, Formula)
    inputs = []
    for v in args.values():
        if isinstance(v, TensorMeta):
            inputs.append(v)
        elif isinstance(v, tuple):
            inputs.extend(x for x in v if isinstance(x, TensorMeta))
    return entry(OpCall(target, args, tuple(inputs), outputs, **kw))


def test_mkldnn_gru_mode() -> None:
    # a oneDNN GRU layer (mode 3): weight0 (21, 5), weight1 (21, 7), 6 rows:
    # MACs 6*21*12 = 1512, FLOPs 2*1512 + 6*7*16 = 3696 (as the decomposed GRU above)
    args = {
        "input": _t(3, 2, 5),
        "weight0": _t(21, 5),
        "weight1": _t(21, 7),
        "weight2": _t(21),
        "weight3": _t(21),
        "hx_": _t(2, 7),
        "cx_": _t(2, 7),
        "reverse": False,
        "batch_sizes": [],
        "mode": 3,
        "hidden_size": 7,
        "num_layers": 1,
        "has_biases": True,
    }
    w = _run("mkldnn_rnn_layer", args, (_t(3, 2, 7),))
    assert (w.macs, w.flops) == (1512, 3696)


def _cudnn_args(stride: int, proj: int = 0) -> dict:
    # 2-layer bidirectional LSTM, I=5, H=7, flat weights, weight_stride0 per layer-direction
    layers = []
    for layer in range(2):
        in_size = 5 if layer == 0 else 2 * (proj or 7)
        for _ in range(2):
            group = [_t(28, in_size, weight=True), _t(28, proj or 7, weight=True)]
            if stride >= 4:
                group += [_t(28, weight=True), _t(28, weight=True)]
            if proj:
                group.append(_t(proj, 7, weight=True))
            layers.extend(group)
    return {
        "input": _t(3, 2, 5),
        "weight": tuple(layers),
        "weight_stride0": stride,
        "weight_buf": _t(10_000, sid=99),
        "hx": _t(4, 2, proj or 7),
        "cx": _t(4, 2, 7),
        "mode": 2,
        "hidden_size": 7,
        "proj_size": proj,
        "num_layers": 2,
        "batch_first": False,
        "dropout": 0.0,
        "train": False,
        "bidirectional": True,
    }


def test_cudnn_rnn() -> None:
    w = _run("_cudnn_rnn", _cudnn_args(4), (_t(3, 2, 14),))
    # as test_lstm_two_layers_bidirectional_batch_first: 11088 MACs, 25872 FLOPs
    assert (w.macs, w.flops) == (11088, 25872)
    # bytes read: input 30*4 + hx, cx 2*56*4 + weights, not weight_buf:
    # layer 0: 2*(28*5 + 28*7 + 56)*4 = 3136; layer 1: 2*(28*14 + 28*7 + 56)*4 = 5152
    assert w.bytes_read == 120 + 448 + 3136 + 5152
    assert w.weight_bytes == 3136 + 5152
    # with proj_size 4: per row and layer-direction 28*(I_l + 4) + 7*4:
    # layer 0: 28*9 + 28 = 280, layer 1 (input 8): 28*12 + 28 = 364; *2 directions *6 rows
    w = _run("_cudnn_rnn", _cudnn_args(5, proj=4), (_t(3, 2, 8),))
    assert w.macs == 2 * 6 * (280 + 364)


def test_fused_cells_match_cpu_cells() -> None:
    # _thnn_fused_lstm_cell, B=2, H=7, both biases: 22*14 + 2*(2*28) = 308 + 112 = 420
    args = {
        "input_gates": _t(2, 28),
        "hidden_gates": _t(2, 28),
        "cx": _t(2, 7),
        "input_bias": _t(28),
        "hidden_bias": _t(28),
    }
    lstm = _run("_thnn_fused_lstm_cell", args, (_t(2, 7), _t(2, 7), _t(2, 28)))
    assert lstm.flops == 420
    # CUDA LSTMCell = mm (2*5-1)*56 + mm (2*7-1)*56 + fused 420 = 504 + 728 + 420 = 1652,
    # the CPU path (addmm with biases, add, sigmoid, tanh, mul ...) gives the same
    cpu = modelmeter.analyze(nn.LSTMCell(5, 7), "2x5").total().cost
    assert (cpu.macs, cpu.flops) == (2 * 28 * 12, 504 + 728 + 420)
    # _thnn_fused_gru_cell, B=2, H=7: 16*14 + 2*(2*21) = 224 + 84 = 308
    args = {
        "input_gates": _t(2, 21),
        "hidden_gates": _t(2, 21),
        "hx": _t(2, 7),
        "input_bias": _t(21),
        "hidden_bias": _t(21),
    }
    gru = _run("_thnn_fused_gru_cell", args, (_t(2, 7), _t(2, 35)))
    assert gru.flops == 308
    # CUDA GRUCell = mm (2*5-1)*42 + mm (2*7-1)*42 + 308 = 378 + 546 + 308 = 1232
    cpu = modelmeter.analyze(nn.GRUCell(5, 7), "2x5").total().cost
    assert (cpu.macs, cpu.flops) == (2 * 21 * 12, 378 + 546 + 308)


@pytest.mark.parametrize(("op", "gates", "ew"), [("LSTM", 4, 22), ("GRU", 3, 16), ("RNN", 1, 2)])
def test_onnx_rnns(op: str, gates: int, ew: int) -> None:
    # X (T=3, B=2, I=5), 2 directions, H=7, with B (2, 2*G*H)
    gh = gates * 7
    x, w, r, b = _t(3, 2, 5), _t(2, gh, 5), _t(2, gh, 7), _t(2, 2 * gh)
    entry = lookup("onnx", op)
    assert isinstance(entry, Formula)
    work = entry(OpCall(op, {}, (x, w, r, b), (_t(3, 2, 2, 7),)))
    # MACs 2 dirs * 6 rows * G*7*(5+7); FLOPs 2*MACs + 2*6*7*ew
    macs = 2 * 6 * gh * 12
    assert (work.macs, work.flops) == (macs, 2 * macs + 2 * 6 * 7 * ew)
