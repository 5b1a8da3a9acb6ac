"""nn.LSTM on meta runs as the oneDNN layers a real CPU runs (frontends/torch/fused_rnn.py).

Before, a meta trace (the default) ran ``_VF.lstm``'s reference path: two ``addmm`` per time
step, each reading its weight again, so the bytes grew with the sequence length while the
real CPU run (and cuDNN) read each weight once. MACs and FLOPs were already equal."""

from __future__ import annotations

import pytest
import torch
from torch import _VF, nn

import modelmeter


def _ops(report: modelmeter.Report) -> dict[str, tuple[int, ...]]:
    return {k: (v.calls, v.cost.macs, v.cost.flops, v.cost.bytes_read, v.cost.bytes_written)
            for k, v in report.by_operator().items()}  # fmt: skip


def test_one_layer_reads_its_weights_once() -> None:
    meta = modelmeter.analyze(nn.LSTM(5, 7).eval(), "3x2x5")
    # T=3, B=2, I=5, H=7, float32. The layer reads input 3*2*5*4 = 120, w_ih 28*5*4 = 560,
    # w_hh 28*7*4 = 784, two biases 2*28*4 = 224, h0 and c0 2*2*7*4 = 112: 1,800 bytes;
    # writes the output 3*2*7*4 = 168 and the last h and c 112: 280. (The reference path
    # read 4,992 bytes in its 6 addmm, each weight once per step.)
    assert _ops(meta)["aten.mkldnn_rnn_layer"] == (1, 2016, 4956, 1800, 280)
    assert "aten.addmm" not in _ops(meta)


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True).eval(), "2x3x5"),
        (lambda: nn.LSTM(5, 7, bias=False).eval(), "3x2x5"),
        (lambda: nn.LSTM(5, 7, num_layers=2, dropout=0.5).eval(), "3x2x5"),
        (lambda: nn.LSTM(5, 7, num_layers=3, batch_first=True).eval(), "2x4x5"),
    ],
)
def test_meta_equals_the_real_cpu_run_op_for_op(build, shape) -> None:  # noqa: ANN001
    model = build()
    meta = modelmeter.analyze(model, shape, mode="meta")
    real = modelmeter.analyze(model, shape, mode="real")
    assert "aten.mkldnn_rnn_layer" in _ops(real)
    assert _ops(meta) == _ops(real)
    assert meta.total().peak_activation_bytes == real.total().peak_activation_bytes


@pytest.mark.filterwarnings("ignore:LSTM with projections")
def test_other_calls_keep_the_reference_path() -> None:
    # projections: the CPU backend does not use oneDNN either, neither on meta
    meta = modelmeter.analyze(nn.LSTM(5, 7, proj_size=4), "3x2x5")
    assert "aten.mkldnn_rnn_layer" not in _ops(meta) and "aten.addmm" in _ops(meta)
    # float16 (no oneDNN on meta's side of the check): the reference path
    half = modelmeter.analyze(nn.LSTM(5, 7).eval(), "3x2x5", dtype="fp16")
    assert "aten.mkldnn_rnn_layer" not in _ops(half)
    # training mode, or a backward: oneDNN's workspace for it has no size on meta
    train = modelmeter.analyze(nn.LSTM(5, 7).train(), "3x2x5")
    assert "aten.mkldnn_rnn_layer" not in _ops(train)
    grads = modelmeter.analyze(nn.LSTM(5, 7).eval(), "3x2x5", backward=True)
    assert "aten.mkldnn_rnn_layer" not in _ops(grads)


def test_the_wrapper_is_gone_after_the_trace() -> None:
    modelmeter.analyze(nn.LSTM(5, 7).eval(), "3x2x5")
    assert "lstm" not in vars(_VF) or vars(_VF)["lstm"].__module__ != "modelmeter.frontends.torch.fused_rnn"
    out, (h, c) = nn.LSTM(5, 7)(torch.randn(3, 2, 5))  # the user's own call, real tensors
    assert out.shape == (3, 2, 7) and h.shape == c.shape == (1, 2, 7)
