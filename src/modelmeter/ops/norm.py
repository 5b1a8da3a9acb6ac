"""Normalisation layers: batch norm (every ATen variant), layer norm, group norm, instance
norm and RMS norm.

In PyTorch 2.14 ``nn.BatchNorm*`` reaches the tracer as ``native_batch_norm`` (CPU and meta; a
GPU build may use ``cudnn_batch_norm``, export/functionalisation the ``_native_batch_norm_legit*``
and ``_batch_norm_with_update*`` forms), ``nn.InstanceNorm*`` as ``native_batch_norm`` on an
``(1, N*C, ...)`` view (each (sample, channel) pair is one channel), in training mode unless it
tracks running statistics and is in eval mode,
``nn.LayerNorm`` as ``native_layer_norm``, ``nn.GroupNorm`` as ``native_group_norm``.
``nn.RMSNorm`` / ``F.rms_norm`` decompose on CPU and meta into pow, mean, add, rsqrt and mul
(counted by those ops); a CUDA build may run ``_fused_rms_norm``, counted here.
``nn.LocalResponseNorm`` decomposes into mul, pad, avg_pool3d, add, pow and div.

Conventions (every add, multiply, divide and special function is 1 FLOP; rsqrt is 1): the mean
of n values costs n-1 adds + 1 divide = n; the biased variance of n centred values costs n
squares + n-1 adds + 1 divide = 2n; ``rsqrt(var + eps)`` costs 2 per statistic.
"""

from __future__ import annotations

import math

from modelmeter.registry import OpCall, TensorMeta, Work, register_op
from modelmeter.units import DTYPE_BYTES

# ---- batch norm --------------------------------------------------------------------------------

# Ops whose mode is fixed by the op itself rather than a ``training`` argument.
_ALWAYS_TRAINING = {"_batch_norm_with_update", "_batch_norm_with_update_functional"}
_NEVER_TRAINING = {"_native_batch_norm_legit_no_training"}


def _tensor_arg(call: OpCall, name: str, pos: int) -> TensorMeta | None:
    """A tensor argument by schema name, or (for frontends without torch names) by position."""
    if name in call.args:
        value = call.args[name]
        return value if isinstance(value, TensorMeta) else None
    if not any(isinstance(v, TensorMeta) for v in call.args.values()) and len(call.inputs) > pos:
        return call.inputs[pos]
    return None


def _bn_training(call: OpCall, running_mean: TensorMeta | None) -> bool:
    if call.op in _ALWAYS_TRAINING:
        return True
    if call.op in _NEVER_TRAINING:
        return False
    if call.op == "_batch_norm_no_update":  # uses the running stats when it has them
        return running_mean is None
    if "training" in call.args:
        return bool(call.args["training"])
    return bool(call.arg("training_mode", False))


def batch_norm_flops(
    numel: int, channels: int, training: bool, weight: bool, bias: bool, running: bool
) -> int:
    """FLOPs of batch norm over ``numel`` elements in ``channels`` channels (see
    :func:`batch_norm`)."""
    if not training:
        return 2 * numel + channels * (4 + weight)
    return numel * (5 + bias) + channels * (2 + weight + (7 if running else 0))


@register_op(
    "batch_norm",
    family="norm",
    aten=[
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit_functional",
        "_batch_norm_with_update",
        "_batch_norm_with_update_functional",
        "_batch_norm_no_update",
        "cudnn_batch_norm",
        "miopen_batch_norm",
    ],
    onnx=["BatchNormalization"],
)
def batch_norm(call: OpCall) -> Work:
    """Batch norm over C channels of M = numel/C elements each.

    Eval (running statistics), folded into one scale and shift per channel:
    per channel ``scale = gamma * rsqrt(var + eps)`` (add, rsqrt, + 1 multiply with gamma) and
    ``shift = beta - mean * scale`` (multiply, subtract; without beta the negation counts),
    per element ``y = x * scale + shift`` = 2.
    FLOPs = 2*numel + C*(4 + [gamma]).

    Training (batch statistics): per channel mean M, centred values ``x - mean`` M, biased
    variance 2M, ``rsqrt(var + eps)`` 2, ``scale = gamma * invstd`` 1 with gamma; per element
    ``y = centred * scale`` 1 and ``+ beta`` 1 with beta. With running statistics the update
    ``r = (1-m)*r + m*s`` costs 3 for the mean and 3 + 1 (unbiasing by M/(M-1)) for the
    variance: 7 per channel.
    FLOPs = numel*(5 + [beta]) + C*(2 + [gamma] + 7*[running stats]).

    Instance norm runs as batch norm with C = N*channels (training mode, unless it tracks
    running statistics and the module is in eval mode).

    Bytes written: the output; in training also save_mean and save_invstd (C each) and the
    updated running statistics. The empty or unused statistics some variants return in eval
    (and cudnn's reserve buffer) are not counted, so meta and real runs agree.
    """
    x = call.inputs[0]
    weight = _tensor_arg(call, "weight", 1)
    bias = _tensor_arg(call, "bias", 2)
    running_mean = _tensor_arg(call, "running_mean", 3)
    running_var = _tensor_arg(call, "running_var", 4)
    channels = x.shape[1] if x.ndim > 1 else x.shape[0]
    training = _bn_training(call, running_mean)
    running = training and running_mean is not None
    flops = batch_norm_flops(
        x.numel, channels, training, weight is not None, bias is not None, running
    )
    written = call.out.nbytes
    if training:
        stat_dtype = call.outputs[1].dtype if len(call.outputs) > 1 else x.dtype
        written += 2 * math.ceil(channels * DTYPE_BYTES.get(stat_dtype, 4))
        if running:
            written += running_mean.nbytes + (running_var.nbytes if running_var else 0)
    return Work(flops=flops, bytes_written=written)


# ---- layer, group, instance and RMS norm --------------------------------------------------------


def row_norm_flops(numel: int, rows: int, weight: bool, bias: bool) -> int:
    """Mean/variance normalisation of ``rows`` groups: per element mean 1 + centring 1 +
    variance 2 + scaling by rstd 1 (+ gamma, + beta); per group rsqrt(var + eps) 2."""
    return numel * (5 + weight + bias) + 2 * rows


@register_op("layer_norm", family="norm", aten=["native_layer_norm"], onnx=["LayerNormalization"])
def layer_norm(call: OpCall) -> Work:
    """Layer norm over the last D = prod(normalized_shape) elements, R = numel/D rows.

    Per row: mean D (D-1 adds + 1 divide), centred ``x - mean`` D, biased variance 2D
    (D squares, D-1 adds, 1 divide), ``rstd = rsqrt(var + eps)`` 2, ``centred * rstd`` D,
    ``* gamma`` D and ``+ beta`` D when present (gamma varies along D, so it cannot be folded).
    FLOPs = numel*(5 + [gamma] + [beta]) + 2*R. Bytes written include the saved mean and rstd
    (R each), which the kernel really writes."""
    x = call.inputs[0]
    shape = call.arg("normalized_shape")
    if shape is None:  # frontends without the torch schema: normalise from ``axis`` on
        axis = int(call.arg("axis", -1))
        shape = x.shape[axis:]
    d = math.prod(shape) if len(shape) else 1
    rows = x.numel // d if d else 0
    weight = _tensor_arg(call, "weight", 1) is not None
    bias = _tensor_arg(call, "bias", 2) is not None
    return Work(flops=row_norm_flops(x.numel, rows, weight, bias))


@register_op("group_norm", family="norm", aten=["native_group_norm"], onnx=["GroupNormalization"])
def group_norm(call: OpCall) -> Work:
    """Group norm: N*G groups of (C/G)*HxW elements, each normalised like a layer-norm row;
    gamma and beta are per channel. FLOPs = numel*(5 + [gamma] + [beta]) + 2*N*G."""
    x = call.inputs[0]
    n = int(call.arg("N", x.shape[0]))
    groups = int(call.arg("group", call.arg("num_groups", 1)))
    weight = _tensor_arg(call, "weight", 1) is not None
    bias = _tensor_arg(call, "bias", 2) is not None
    return Work(flops=row_norm_flops(x.numel, n * groups, weight, bias))


@register_op("instance_norm", family="norm", onnx=["InstanceNormalization"])
def instance_norm(call: OpCall) -> Work:
    """Instance norm as a graph op (ONNX): batch statistics per (sample, channel), no running
    statistics, per-channel affine folded as in training batch norm:
    FLOPs = numel*(5 + [beta]) + N*C*(2 + [gamma]). (PyTorch runs ``native_batch_norm``.)"""
    x = call.inputs[0]
    weight = _tensor_arg(call, "weight", 1) is not None
    bias = _tensor_arg(call, "bias", 2) is not None
    pairs = x.shape[0] * x.shape[1] if x.ndim > 1 else x.shape[0]
    return Work(flops=batch_norm_flops(x.numel, pairs, True, weight, bias, False))


@register_op("rms_norm", family="norm", aten=["_fused_rms_norm"], onnx=["RMSNormalization"])
def rms_norm(call: OpCall) -> Work:
    """RMS norm over the last D = prod(normalized_shape) elements, R = numel/D rows.

    Per row: mean of squares 2D (D squares, D-1 adds, 1 divide), ``rsqrt(ms + eps)`` 2,
    ``x * rstd`` D, ``* gamma`` D when present.
    FLOPs = numel*(3 + [gamma]) + 2*R (the same as its CPU decomposition pow, mean, add, rsqrt,
    mul, mul)."""
    x = call.inputs[0]
    shape = call.arg("normalized_shape")
    if shape is None:
        shape = x.shape[int(call.arg("axis", -1)) :]
    d = math.prod(shape) if len(shape) else 1
    rows = x.numel // d if d else 0
    weight = _tensor_arg(call, "weight", 1) is not None
    return Work(flops=x.numel * (3 + weight) + 2 * rows)
