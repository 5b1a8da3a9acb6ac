"""Convolutions of any dimension, grouped, depthwise, dilated, strided, padded, transposed."""

import math

from modelmeter.registry import OpCall, Work, mac_work, register_op


@register_op(
    "convolution",
    aten=[
        "convolution",
        "_convolution",
        "convolution_overrideable",
        "cudnn_convolution",
        "cudnn_convolution_transpose",
        "mkldnn_convolution",
    ],
)
def convolution(call: OpCall) -> Work:
    """Each output element of a convolution sums (Ci/g)*prod(K) products:
    MACs = N*prod(out spatial)*Co * (Ci/g)*prod(K) = out.numel * prod(weight.shape[1:]).
    A transposed convolution scatters every *input* element over (Co/g)*prod(K) outputs:
    MACs = in.numel * prod(weight.shape[1:]) (weight is [Ci, Co/g, *K]).
    Exact FLOPs (the seed): (2*(Ci/g)*K^2 - 1)*H*W*Co without bias, 2*(Ci/g)*K^2*H*W*Co with
    it, i.e. 2*MACs - outputs (+ outputs with bias). Stride, padding and dilation only act
    through the output shape."""
    x, w, out = call.inputs[0], call.inputs[1], call.out
    per = math.prod(w.shape[1:])
    transposed = bool(call.arg("transposed", False)) or "transpose" in call.op
    macs = (x.numel if transposed else out.numel) * per
    return mac_work(call, macs, out.numel, bias=call.args.get("bias") is not None)
