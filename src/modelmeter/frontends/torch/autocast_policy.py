"""CUDA autocast's casting policy, as data: which ATen ops autocast runs in the low precision
(float16 or bfloat16), which in float32, which in the widest of their inputs' types, and how
it casts their arguments. ``autocast_meta.py`` applies it to a meta trace.

The lists are those of PyTorch's CUDA autocast (``aten/src/ATen/autocast_mode.cpp``; the
documentation's "CUDA Ops that can autocast to float16 / to float32"), by ATen op and
overload, because a training step runs on a GPU; the CPU's lists differ (layer norm and
softmax, for one, stay in the low precision there). ``tests/frontends/torch/
test_autocast_policy.py`` checks them against the ops the installed PyTorch registers for
CUDA autocast and against its CUDA kernels themselves (on fake CUDA tensors).

How each kind casts (as the CUDA kernels do):

- ``low``: every floating tensor argument (not float64) is cast to the low dtype;
- ``fp32``: every floating tensor argument (not float64) is cast to float32;
- ``fp32_opt_dtype`` (softmax, log_softmax, sum, prod, cumsum, ...): nothing is cast; the op
  is called with ``dtype=float32`` unless the caller gave a dtype (the kernel upcasts as it
  reads, or casts first where it has no such path: softmax and log_softmax of bfloat16);
- ``fp32_append_dtype`` (``norm``): called as its overload with ``dtype=float32``;
- ``promote``: every floating argument is cast to float32 if any is float32, else to the
  low dtype;
- ``banned`` (``binary_cross_entropy``): autocast refuses it.

Autocast caches the low-precision copies of the float32 leaves that require grad (the weights
of a model kept in float32) for as long as its region lasts: each such weight is cast once
per forward however many ops read it. Casts to float32 and casts of other tensors are made
again at every op.
"""

from __future__ import annotations

from typing import Any

import torch

LOW = frozenset({
    "_convolution", "_convolution.deprecated", "conv1d", "conv2d", "conv3d", "conv_tbc",
    "conv_transpose1d", "conv_transpose2d.input", "conv_transpose3d.input", "convolution",
    "cudnn_convolution", "cudnn_convolution_transpose", "prelu", "addmm", "addmv", "addr",
    "matmul", "einsum", "mm", "mv", "linalg_vecdot", "linear", "addbmm", "baddbmm", "bmm",
    "chain_matmul", "linalg_multi_dot", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell",
    "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
    "_scaled_dot_product_flash_attention", "scaled_dot_product_attention",
})  # fmt: skip

FP32 = frozenset({
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
    "reciprocal", "rsqrt", "sinh", "tan", "pow.Tensor_Scalar", "pow.Tensor_Tensor",
    "pow.Scalar", "softplus", "layer_norm", "native_layer_norm", "group_norm", "rms_norm",
    "frobenius_norm.dim", "nuclear_norm", "nuclear_norm.dim", "cosine_similarity",
    "poisson_nll_loss", "cosine_embedding_loss", "nll_loss", "nll_loss2d",
    "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss",
    "margin_ranking_loss", "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss",
    "multi_margin_loss", "binary_cross_entropy_with_logits", "dist", "pdist", "cdist",
    "renorm", "logsumexp", "linalg_matrix_sqrth", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
    "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "_upsample_bilinear2d_aa", "upsample_trilinear3d", "upsample_bicubic2d",
    "_upsample_bicubic2d_aa",
})  # fmt: skip

FP32_OPT_DTYPE = frozenset({
    "prod", "prod.dim_int", "softmax.int", "log_softmax.int", "cumprod", "cumsum",
    "linalg_vector_norm", "linalg_matrix_norm", "linalg_matrix_norm.str_ord", "sum",
    "sum.dim_IntList",
})  # fmt: skip

# norm's overloads without a dtype and the ones with it that autocast calls instead
FP32_APPEND_DTYPE = {"norm.Scalar": "ScalarOpt_dtype", "norm.ScalarOpt_dim": "ScalarOpt_dim_dtype"}

PROMOTE = frozenset({
    "addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "vdot", "grid_sampler",
    "index_put", "tensordot", "scatter_add",
})  # fmt: skip

BANNED = frozenset({"binary_cross_entropy"})

# Not a CUDA autocast op: on meta, fused.py sends scaled_dot_product_attention (a low op) to
# this kernel directly, so it takes that op's place in the low list.
STAND_INS = frozenset({"_scaled_dot_product_flash_attention_for_cpu"})

# _cudnn_rnn (CUDA's LSTM/GRU kernel, cast to the low dtype by AutocastRNN.cpp) never runs on
# meta: an RNN there runs its cells' matmuls, which the low list casts.
KINDS: dict[str, str] = {
    **dict.fromkeys(LOW | STAND_INS, "low"),
    **dict.fromkeys(FP32, "fp32"),
    **dict.fromkeys(FP32_OPT_DTYPE, "fp32_opt_dtype"),
    **dict.fromkeys(FP32_APPEND_DTYPE, "fp32_append_dtype"),
    **dict.fromkeys(PROMOTE, "promote"),
    **dict.fromkeys(BANNED, "banned"),
}

BANNED_MESSAGE = (
    "binary_cross_entropy is unsafe to autocast (CUDA autocast refuses it): use "
    "binary_cross_entropy_with_logits, or count the step in fp32 or pure half precision"
)


def eligible(t: Any) -> bool:
    """A tensor autocast may cast: floating point, not float64, on the traced device."""
    return (
        isinstance(t, torch.Tensor)
        and t.is_floating_point()
        and t.dtype != torch.float64
        and t.device.type in ("meta", "cuda")
    )


class CastCache:
    """Autocast's cache of low-precision weights: the casts of float32 leaves that require
    grad, made once in a region and reused (``cached_cast`` in autocast_mode.cpp)."""

    def __init__(self, low: torch.dtype) -> None:
        self.low = low
        self._casts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def cast(self, t: Any, dtype: torch.dtype) -> Any:
        """``t`` in ``dtype`` where autocast casts it, else ``t`` itself."""
        if isinstance(t, (list, tuple)):
            return type(t)(self.cast(x, dtype) for x in t)
        if not eligible(t) or t.dtype == dtype:
            return t
        cacheable = (dtype == self.low and t.dtype == torch.float32 and t.requires_grad
                     and t.is_leaf and not t._is_view())  # fmt: skip
        if not cacheable:
            return t.to(dtype)
        hit = self._casts.get(id(t))
        if hit is None:
            hit = self._casts[id(t)] = (t, t.to(dtype))  # keeps t: its id stays its own
        return hit[1]

    def clear(self) -> None:
        self._casts.clear()


def promoted(args: tuple, kwargs: dict, low: torch.dtype) -> torch.dtype:
    """The type a ``promote`` op runs in: float32 if any floating argument is, else low."""
    for t in _flat((args, kwargs)):
        if eligible(t) and t.dtype == torch.float32:
            return torch.float32
    return low


def with_dtype(op: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """``fp32_opt_dtype``: the arguments with ``dtype=float32`` where the caller gave none and
    the first argument is eligible; unchanged otherwise."""
    if not (args and eligible(args[0])):
        return args, kwargs
    names = [a.name for a in op._schema.arguments]
    i = names.index("dtype")
    if i < len(args):
        if args[i] is not None:
            return args, kwargs
        return (*args[:i], torch.float32, *args[i + 1 :]), kwargs
    if kwargs.get("dtype") is not None:
        return args, kwargs
    return args, {**kwargs, "dtype": torch.float32}


def _flat(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _flat(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _flat(v)]
    return [obj]


__all__ = ["KINDS", "CastCache", "eligible", "promoted", "with_dtype"]
