"""``nn.LSTM`` on the meta device as the oneDNN layers a real CPU runs.

On a CPU PyTorch runs a float32 LSTM (no projections, not packed) as one oneDNN kernel per
layer and direction (``mkldnn_rnn_layer``), on a CUDA GPU as one cuDNN call: both read each
weight once. Only on the meta device, where the analysis traces, does ``torch._VF.lstm`` fall
back to its reference path, two ``addmm`` per step that read the weights again at every time
step. MACs and FLOPs come out the same; bytes do not: ``LSTM(32, 64)`` over 10 steps read
1,011,200 bytes in its ``addmm`` on meta against 103,936 in the real CPU run, the weights
(100,352 bytes) ten times over.

While a meta trace runs, :func:`fused_lstm` puts a wrapper in place of ``torch._VF.lstm`` that
sends the calls PyTorch's CPU backend gives oneDNN (:func:`onednn` lists the conditions) to
``mkldnn_rnn_layer`` layer by layer and direction by direction, as ``mkldnn_rnn`` in ATen does:
the batch-first input made contiguous in time-major order, the directions' outputs
concatenated, dropout between layers in training, the final states stacked. Its meta kernel
gives the shapes and ``ops/rnn.py`` counts it; a test compares every op with a real CPU run.
Other calls (projections, packed sequences, float16/bfloat16) go to the original function,
and so do calls in training mode or with a gradient to compute (``backward``): there oneDNN
also writes a workspace for the backward whose size its meta kernel does not give (0 bytes
against 28,672 per layer of ``LSTM(5, 7)`` at 3 x 2 on a real CPU), so the reference path
stays the estimate there.
Like the attention wrapper (``fused.py``), it acts only in the threads running a meta trace
and is removed when the last one ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import _VF

from modelmeter.frontends.torch.shared_patch import SharedPatch

_LSTM_KIND = 2  # ideep::rnn_kind::LSTM, the ``mode`` mkldnn_rnn_layer takes


def onednn(input: Any, hx: Any, params: Any) -> bool:
    """Whether PyTorch's CPU backend would run this ``_VF.lstm`` call with oneDNN: float32
    meta input with elements, two hidden states of one size (no projections), every weight
    on meta, oneDNN available and enabled."""
    if not isinstance(input, torch.Tensor) or not isinstance(hx, (list, tuple)) or len(hx) != 2:
        return False
    tensors = [input, *hx, *params]
    if not all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors):
        return False
    if input.dtype != torch.float32 or input.numel() == 0 or input.dim() != 3:
        return False
    if hx[0].dim() != 3 or hx[0].shape[2] != hx[1].shape[2]:
        return False
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled


def _bias(weight: torch.Tensor) -> torch.Tensor:
    """The zeros ATen passes for a missing bias: of the weight's whole shape, as it makes them."""
    return torch.zeros(weight.shape, dtype=weight.dtype, device=weight.device)


def _onednn_lstm(
    input: torch.Tensor, hx: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
    has_biases: bool, num_layers: int, dropout: float, train: bool, bidirectional: bool,
    batch_first: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """ATen's ``mkldnn_rnn`` for an LSTM, op for op."""
    dirs, stride = (2 if bidirectional else 1), (4 if has_biases else 2)
    # held to the end, as ATen's local ``input`` is (the peak counts the copy)
    time_major = (input.transpose(0, 1) if batch_first else input).contiguous()
    layer_input = time_major
    h0, c0 = hx[0].contiguous(), hx[1].contiguous()
    hidden = h0.shape[2]
    hy, cy = [], []
    for layer in range(num_layers):
        outs = []
        for direction in range(dirs):
            i = layer * dirs + direction
            w = params[i * stride : (i + 1) * stride]
            # the biases (or ATen's temporary zeros) and the workspace die with the call
            result = torch.ops.aten.mkldnn_rnn_layer(
                layer_input, w[0], w[1], *((w[2], w[3]) if has_biases else (_bias(w[0]), _bias(w[1]))),
                h0[i], c0[i], direction > 0, [],
                _LSTM_KIND, hidden, num_layers, has_biases, bidirectional, batch_first, train,
            )  # fmt: skip
            outs.append(result[0])
            hy.append(result[1])
            cy.append(result[2])
            del result
        layer_input = outs[0] if dirs == 1 else torch.cat(outs, -1)
        if dropout and train and layer < num_layers - 1:
            layer_input = torch.dropout(layer_input, dropout, True)
    output = layer_input.transpose(0, 1) if batch_first else layer_input
    return output, torch.stack(hy, 0), torch.stack(cy, 0)


def _for_backward(args: tuple[Any, ...]) -> bool:
    """Training mode (``args[6]``), or a gradient to flow: oneDNN then writes a workspace."""
    if args[6]:
        return True
    tensors = [args[0], *args[1], *args[2]]
    return torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in tensors
    )


def _lstm(*args: Any, **kwargs: Any) -> Any:
    # the unpacked form: (input, hx, params, has_biases, num_layers, dropout, train,
    # bidirectional, batch_first); the packed one has batch_sizes (a tensor) second
    if _PATCH.tracing and not kwargs and len(args) == 9:
        if not _for_backward(args) and onednn(args[0], args[1], args[2]):
            return _onednn_lstm(*args)
    return _PATCH.saved(*args, **kwargs)


_PATCH = SharedPatch(_VF, "lstm", _lstm)  # an instance attribute in front of _VF's __getattr__


@contextmanager
def fused_lstm() -> Iterator[None]:
    """For the duration of a meta trace: LSTM calls the CPU runs with oneDNN run as its
    layers. Traces in several threads share one installation; the last to end removes it."""
    with _PATCH.installed():
        yield


__all__ = ["fused_lstm", "onednn"]
