"""Recurrent layers: LSTM, GRU and Elman RNN (tanh / relu).

What reaches the tracer in PyTorch 2.14 (``aten.lstm``, ``gru``, ``rnn_*`` and the ``*_cell``
ops are composite and never arrive themselves):

- meta tensors, and real CPU tensors for GRU, RNN, LSTM with ``proj_size`` and all cells: one
  ``addmm``/``mm`` per gate projection and per step (CPU precomputes the input projection of
  all steps at once) plus the elementwise gate ops -- counted by those ops;
- real CPU LSTM (oneDNN): one ``mkldnn_rnn_layer`` per layer and direction;
- CUDA: ``_cudnn_rnn`` for a whole ``nn.LSTM/GRU/RNN`` (``miopen_rnn`` on ROCm), and for the
  cells ``mm`` + ``_thnn_fused_lstm_cell`` / ``_thnn_fused_gru_cell``.

Per time step, layer and direction, for a batch row with input size I, hidden size H, G gates
(LSTM 4, GRU 3, RNN 1) and projection size P (LSTM only; P = H without projection):

- MACs: input projection G*H*I + hidden projection G*H*P (+ H*P for the LSTM projection);
  with T steps and B rows each, MACs = T*B*(G*H*(I + P) [+ H*P]).
- FLOPs of the projections: each is a matmul with its own bias (b_ih, b_hh): exact
  2*MACs, without bias 2*MACs - outputs (``registry.mac_work``), ``2mac`` 2*MACs.
- Elementwise gate FLOPs per hidden unit (sigmoid 4, tanh 1, add/mul 1):
  LSTM 22 = gates ih + hh 4, three sigmoids 12, tanh(g) 1, c = f*c + i*g 3, tanh(c) 1,
  h = o*tanh(c) 1; GRU 16 = r and z (add + sigmoid) 10, n = tanh(ih_n + r*hh_n) 3,
  h = (h - n)*z + n 3; RNN 2 = add + tanh/relu.

This matches the decomposed (meta) path op by op, so meta and real runs agree.
"""

from __future__ import annotations

from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, register_op, unfused_bytes

# cudnn / oneDNN mode numbers
RNN_RELU, RNN_TANH, LSTM, GRU = 0, 1, 2, 3
GATES = {RNN_RELU: 1, RNN_TANH: 1, LSTM: 4, GRU: 3}
ELEMENTWISE = {RNN_RELU: 2, RNN_TANH: 2, LSTM: 22, GRU: 16}


def recurrent_work(
    call: OpCall,
    rows: int,
    input_size: int,
    hidden: int,
    mode: int,
    bias: bool,
    proj: int = 0,
) -> Work:
    """Cost of ``rows`` (time steps x batch rows) cell updates of one layer and direction."""
    gates = GATES[mode] * hidden
    recurrent = proj or hidden
    ih = mac_work(call, rows * gates * input_size, rows * gates, bias)
    hh = mac_work(call, rows * gates * recurrent, rows * gates, bias)
    macs = ih.macs + hh.macs
    flops = ih.flops + hh.flops + rows * hidden * ELEMENTWISE[mode]
    if proj:
        pr = mac_work(call, rows * hidden * proj, rows * proj, bias=False)
        macs += pr.macs
        flops += pr.flops
    return Work(macs=macs, flops=flops)


def _rows(x: TensorMeta) -> int:
    """Cell updates per layer and direction: T*B for (T, B, I) / (B, T, I), or the packed
    row count sum(batch_sizes) for a packed (N, I) input."""
    return x.numel // x.shape[-1] if x.shape and x.shape[-1] else 0


@register_op("mkldnn_rnn_layer", family="rnn", aten=["mkldnn_rnn_layer"])
def mkldnn_rnn_layer(call: OpCall) -> Work:
    """One layer and direction of an RNN/LSTM/GRU run by oneDNN (CPU ``nn.LSTM``):
    weight0 (G*H, I), weight1 (G*H, H). MACs = T*B*G*H*(I + H); FLOPs as in the module
    docstring (biases counted when ``has_biases``)."""
    x = call.inputs[0]
    w_ih = call.args["weight0"]
    hidden = int(call.arg("hidden_size", call.args["weight1"].shape[-1]))
    mode = int(call.arg("mode", LSTM))
    bias = bool(call.arg("has_biases", True))
    return recurrent_work(call, _rows(x), w_ih.shape[-1], hidden, mode, bias)


# Elementwise FLOPs per hidden unit of one cell's backward (sigmoid' = s*(1 - s): 2 + the
# chain-rule multiply; tanh' = 1 - t*t: 2 + 1):
# LSTM 23 = dh from above + from the next step 1, do = dh*tanh(c) 1, dh*o 1,
#   dc = dc_next + dh*o*(1 - tanh(c)^2) 4, di, df, dg, dc_prev (one multiply each) 4,
#   three sigmoid' 9, tanh' 3;
# GRU 18 = dh sum 1, dz = dh*(h - n) 2, dn = dh*(1 - z) 2, dh*z 1, tanh' 3, dr = dn*hn 1,
#   dhn = dn*r 1, two sigmoid' 6, dh_prev = dh*z + (hh product) 1;
# RNN tanh 4 = dh sum 1, tanh' 3; relu 2 = dh sum 1, relu' (a select) 1.
ELEMENTWISE_BACKWARD = {RNN_RELU: 2, RNN_TANH: 4, LSTM: 23, GRU: 18}


@register_op("mkldnn_rnn_layer_backward", family="rnn", aten=["mkldnn_rnn_layer_backward"])
def mkldnn_rnn_layer_backward(call: OpCall) -> Work:
    """Backward of one oneDNN RNN/LSTM/GRU layer and direction (CPU ``nn.LSTM`` training) over
    R = T*B rows, G gates, input size I, hidden size H: the gate gradients, elementwise per
    hidden unit (sigmoid' = s*(1 - s) and tanh' = 1 - t*t cost 2, + 1 for the chain rule):
    LSTM 23 (dh from above and from the next step 1, do 1, dh*o 1, dc 4, di/df/dg/dc_prev 4,
    three sigmoid' 9, tanh' 3), GRU 18, RNN 4 (tanh) / 2 (relu); and four products, each a
    sum of products: dx = dG @ W_ih (R*G*H*I MACs, R*I outputs),
    dh = dG @ W_hh (R*G*H*H, R*H), dW_ih = dG^T @ x (R*G*H*I, G*H*I),
    dW_hh = dG^T @ h (R*G*H*H, G*H*H): MACs = 2 * forward MACs; exact FLOPs 2*MACs - outputs
    for each. With biases, each bias gradient sums R rows: 2*(R - 1)*G*H adds."""
    x = call.inputs[0]
    w_ih, w_hh = call.args.get("weight1"), call.args.get("weight2")
    if not isinstance(w_ih, TensorMeta) or not isinstance(w_hh, TensorMeta):
        w_ih, w_hh = call.inputs[1], call.inputs[2]
    hidden = int(call.arg("hidden_size", w_hh.shape[-1]))
    mode = int(call.arg("mode", LSTM))
    bias = bool(call.arg("has_biases", True))
    rows = _rows(x)
    gh = GATES[mode] * hidden
    i_size, p_size = w_ih.shape[-1], w_hh.shape[-1]
    parts = [
        mac_work(call, rows * gh * i_size, rows * i_size, bias=False),
        mac_work(call, rows * gh * p_size, rows * p_size, bias=False),
        mac_work(call, rows * gh * i_size, gh * i_size, bias=False),
        mac_work(call, rows * gh * p_size, gh * p_size, bias=False),
    ]
    flops = sum(p.flops for p in parts) + rows * hidden * ELEMENTWISE_BACKWARD[mode]
    if bias:
        flops += 2 * max(0, rows - 1) * gh
    return Work(macs=sum(p.macs for p in parts), flops=flops)


@register_op("cudnn_rnn", family="rnn", aten=["_cudnn_rnn", "miopen_rnn"])
def cudnn_rnn(call: OpCall) -> Work:
    """A whole multi-layer, possibly bidirectional RNN/LSTM/GRU in one call. The weights
    come as a flat list, ``weight_stride0`` tensors per layer and direction:
    w_ih (G*H, I_l), w_hh (G*H, P), [b_ih, b_hh], [w_hr (P, H) with proj_size P].
    Every layer and direction processes all T*B rows (or the packed rows):
    MACs = rows * sum over layers/directions of (G*H*(I_l + P) + H*P).
    Bytes read: input, hx, cx and the weight tensors (not ``weight_buf``, which they view)."""
    x = call.inputs[0]
    weights = call.args.get("weight", ())
    stride = int(call.arg("weight_stride0", 2)) or 2
    mode = int(call.arg("mode", LSTM))
    hidden = int(call.args["hidden_size"])
    proj = int(call.arg("proj_size", 0))
    bias = stride >= 4
    rows = _rows(x)
    macs = flops = 0
    for i in range(0, len(weights) - stride + 1, stride):
        w_ih = weights[i]
        w = recurrent_work(call, rows, w_ih.shape[-1], hidden, mode, bias, proj)
        macs += w.macs
        flops += w.flops
    buf = call.args.get("weight_buf")
    read, written, weight_bytes = unfused_bytes(
        (t for t in call.inputs if t is not buf), call.outputs
    )
    return Work(
        macs=macs, flops=flops, bytes_read=read, bytes_written=written, weight_bytes=weight_bytes
    )


def _bias_count(call: OpCall) -> int:
    return sum(isinstance(call.args.get(n), TensorMeta) for n in ("input_bias", "hidden_bias"))


@register_op("fused_lstm_cell", family="rnn", aten=["_thnn_fused_lstm_cell"])
def fused_lstm_cell(call: OpCall) -> Work:
    """The elementwise part of an LSTM cell on CUDA (the gate matmuls are separate ``mm``):
    22 FLOPs per hidden unit (module docstring) + 4H per row for each bias added here.
    FLOPs = 22*B*H + (#biases)*B*4H."""
    gates, cx = call.inputs[0], call.args["cx"]
    return Work(flops=22 * cx.numel + _bias_count(call) * gates.numel)


@register_op("fused_gru_cell", family="rnn", aten=["_thnn_fused_gru_cell"])
def fused_gru_cell(call: OpCall) -> Work:
    """The elementwise part of a GRU cell on CUDA: 16 FLOPs per hidden unit + 3H per row
    for each bias added here. FLOPs = 16*B*H + (#biases)*B*3H."""
    gates, hx = call.inputs[0], call.args["hx"]
    return Work(flops=16 * hx.numel + _bias_count(call) * gates.numel)


_ONNX_MODES = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN_TANH}


@register_op("onnx_rnn", family="rnn", onnx=["LSTM", "GRU", "RNN"])
def onnx_rnn(call: OpCall) -> Work:
    """ONNX LSTM/GRU/RNN: X (T, B, I), W (dirs, G*H, I), R (dirs, G*H, H), optional
    B (dirs, 2*G*H). MACs = dirs*T*B*G*H*(I + H); FLOPs as in the module docstring."""
    x, w, r = call.inputs[0], call.inputs[1], call.inputs[2]
    mode = _ONNX_MODES[call.op]
    dirs, gh, hidden = r.shape[0], r.shape[1], r.shape[2]
    bias = len(call.inputs) > 3 and call.inputs[3].shape == (dirs, 2 * gh)
    one = recurrent_work(call, x.shape[0] * x.shape[1], w.shape[-1], hidden, mode, bias)
    return Work(macs=dirs * one.macs, flops=dirs * one.flops)


@register_op("dynamic_quantize_lstm", family="quant", onnx=["com.microsoft.DynamicQuantizeLSTM"])
def dynamic_quantize_lstm(call: OpCall) -> Work:
    """onnxruntime's dynamically quantised LSTM (``quantize_dynamic`` of an ONNX LSTM): X
    (T, B, I) in float, W (dirs, I, 4H) and R (dirs, H, 4H) in 8 bits (transposed against
    LSTM's), optional float B (dirs, 8H). MACs as the LSTM's, dirs*T*B*4H*(I + H); exact
    FLOPs as the LSTM's plus, per direction, the dynamic quantisation of every input row and
    hidden state it multiplies (range 2 + quantise 5 per element) and the dequantising multiply
    of both products (2 per gate output); 2mac: the LSTM's."""
    x, w, r = call.inputs[0], call.inputs[1], call.inputs[2]
    dirs, hidden = r.shape[0], r.shape[1]
    steps, rows = x.shape[0], x.shape[0] * x.shape[1]
    bias = len(call.inputs) > 3 and call.inputs[3].shape == (dirs, 8 * hidden)
    one = recurrent_work(call, rows, w.shape[1], hidden, LSTM, bias)
    if call.convention == "2mac":
        return Work(macs=dirs * one.macs, flops=dirs * one.flops)
    quantise = 7 * (rows * w.shape[1] + steps * x.shape[1] * hidden)
    dequantise = 2 * rows * 4 * hidden
    return Work(macs=dirs * one.macs, flops=dirs * (one.flops + quantise + dequantise))
