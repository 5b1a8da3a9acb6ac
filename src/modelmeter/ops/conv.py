"""Convolutions of any dimension, grouped, depthwise, dilated, strided, padded, transposed."""

import math
from collections.abc import Sequence
from dataclasses import replace

from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, register_op


@register_op(
    "convolution",
    family="conv",
    aten=[
        "convolution",
        "_convolution",
        "convolution_overrideable",
        "cudnn_convolution",
        "cudnn_convolution_transpose",
        "mkldnn_convolution",
    ],
    onnx=["Conv", "ConvTranspose"],
)
def convolution(call: OpCall) -> Work:
    """Each output element of a convolution sums (Ci/g)*prod(K) products:
    MACs = N*prod(out spatial)*Co * (Ci/g)*prod(K) = out.numel * prod(weight.shape[1:]).
    A transposed convolution scatters every *input* element over (Co/g)*prod(K) outputs:
    MACs = in.numel * prod(weight.shape[1:]) (weight is [Ci, Co/g, *K]).
    Exact FLOPs (the source document's formula): (2*(Ci/g)*K^2 - 1)*H*W*Co without bias, 2*(Ci/g)*K^2*H*W*Co with
    it, i.e. 2*MACs - outputs (+ outputs with bias). Stride, padding and dilation only act
    through the output shape.
    A depthwise convolution (groups > 1, one input channel per group) reduces over no
    channel, so it is not a matrix product: it runs on the vector units (see depthwise)."""
    x, w, out = call.inputs[0], call.inputs[1], call.out
    per = math.prod(w.shape[1:])
    transposed = bool(call.arg("transposed", False)) or "transpose" in call.op
    macs = (x.numel if transposed else out.numel) * per
    work = mac_work(call, macs, out.numel, bias=call.args.get("bias") is not None)
    return replace(work, unit="vector") if depthwise(call, x) else work


def depthwise(call: OpCall, x: TensorMeta) -> bool:
    """Whether the call is a depthwise convolution (:func:`is_depthwise` with its groups)."""
    return is_depthwise((x.shape,), int(call.arg("groups", 1)))


def is_depthwise(input_shapes: Sequence[Sequence[int]], groups: int | None = None) -> bool:
    """A grouped convolution with one input channel per group (groups = Ci > 1). Each output
    then sums only prod(K) products of one channel: there is no channel reduction to map onto a
    matrix unit, and GPU libraries (cuDNN) and CPU ones (oneDNN) run it as a direct, vector
    kernel. Measured here on the CPU (8x128x56x56, 3x3, float32): 21 GFLOP/s at one channel
    per group, close to the elementwise rate, against 180-220 GFLOP/s from 32 per group up.

    ``input_shapes`` starts with the input and the weight. Without ``groups`` (a profiler
    sees only shapes) the weight tells: [Co, Ci/g, *K] with Ci/g = 1 on an input of Ci > 1
    channels (input and weight at least 3-d) is one channel per group, g = Ci."""
    x = tuple(input_shapes[0]) if input_shapes else ()
    if groups is None:
        w = tuple(input_shapes[1]) if len(input_shapes) > 1 else ()
        if len(x) < 3 or len(w) < 3 or w[1] != 1:
            return False
        groups = x[1]
    return groups > 1 and len(x) >= 2 and x[1] == groups


@register_op("convolution_backward", family="conv", aten=["convolution_backward"])
def convolution_backward(call: OpCall) -> Work:
    """Gradients of a convolution, each part only where ``output_mask`` asks for it.
    grad_input is a transposed convolution of grad_output with the weight, grad_weight a
    correlation of the input with grad_output: each takes the forward's MACs
    (out.numel * prod(weight.shape[1:]), or in.numel * ... when transposed).
    Exact FLOPs: 2*MACs - grad_input.numel and 2*MACs - weight.numel (sums of products);
    grad_bias sums grad_output over batch and space: grad_output.numel - Co adds.
    A depthwise convolution's gradients are not matrix products either (vector units)."""
    grad_out, x, w = call.inputs[0], call.inputs[1], call.inputs[2]
    mask = call.arg("output_mask", (True, True, True))
    transposed = bool(call.arg("transposed", False))
    fwd = (x.numel if transposed else grad_out.numel) * math.prod(w.shape[1:])
    macs = flops = 0
    for wanted, produced in ((mask[0], x.numel), (mask[1], w.numel)):
        if wanted:
            part = mac_work(call, fwd, produced, bias=False)
            macs += part.macs
            flops += part.flops
    if mask[2]:
        channels = w.shape[1] * call.arg("groups", 1) if transposed else w.shape[0]
        flops += grad_out.numel - channels
    return Work(macs=macs, flops=flops, unit="vector" if depthwise(call, x) else None)


@register_op("conv_tbc", family="conv", aten=["conv_tbc"])
def conv_tbc(call: OpCall) -> Work:
    """1-d convolution in time-batch-channel layout (fairseq): input (T, B, Ci), weight
    (K, Ci, Co), bias (Co): each of the (T_out, B, Co) outputs sums K*Ci products and adds the
    bias. MACs = out.numel * K*Ci; exact FLOPs = 2*MACs (the bias add takes the place of the
    missing add)."""
    w, out = call.inputs[1], call.out
    per = w.shape[0] * w.shape[1] if w.ndim == 3 else 0
    return mac_work(call, out.numel * per, out.numel, bias=True)
