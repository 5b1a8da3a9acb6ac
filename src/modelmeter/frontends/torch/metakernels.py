"""Output shapes for ops whose meta kernel refuses a dtype that a real kernel computes.

``aten._grouped_mm`` (the grouped matmul of mixture-of-experts layers, which transformers 5
calls for its experts) has a meta kernel that accepts only bfloat16 (and some float16)
operands, although PyTorch's CPU kernel computes it in float32 too. A float32 model therefore
could not be analysed on meta at all. When the meta kernel refuses, the tracer builds the
output here from the operands' shapes: the same op is recorded with the same shapes, so what
is counted does not change. The output's shape and strides come from the meta kernel itself,
run on bfloat16 stand-ins of the floating operands (so its shape checks still apply), and its
dtype is the operands' (or ``out_dtype``).
"""

from __future__ import annotations

from typing import Any

import torch


def _on_meta(values: Any) -> bool:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    return bool(tensors) and all(t.device.type == "meta" for t in tensors)


def run(func: Any, target: str, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)``; for ``_grouped_mm`` on meta tensors whose dtype its meta
    kernel refuses, the output the kernel gives bfloat16 stand-ins, in the operands' dtype."""
    if target != "_grouped_mm":
        return func(*args, **kwargs)
    try:
        return func(*args, **kwargs)
    except RuntimeError as e:
        if not _on_meta([*args, *kwargs.values()]):
            raise
        first = e
    names = ("self", "mat2", "offs", "bias", "out_dtype")
    bound = dict(zip(names, args)) | kwargs
    # the meta kernel's own shape checks, on bfloat16 stand-ins of the floating operands
    stand_in = {k: _bf16(v) for k, v in bound.items()}
    try:
        out = func(**stand_in)
    except RuntimeError:
        raise first from None
    dtype = bound.get("out_dtype") or bound["self"].dtype
    return torch.empty_strided(out.shape, out.stride(), dtype=dtype, device="meta")


def _bf16(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return torch.empty_strided(
            value.shape, value.stride(), dtype=torch.bfloat16, device="meta"
        )
    return value
