"""Scaled dot-product attention and PyTorch's fused transformer fast paths.

What reaches the tracer in PyTorch 2.14 for ``F.scaled_dot_product_attention``:

- real CPU tensors: ``_scaled_dot_product_flash_attention_for_cpu`` (also with a mask, a bool
  mask being turned into an additive one first by ``where``, causal, and GQA); when the value
  head size differs from the query's, or with dropout, the math path below;
- meta tensors: the math path, decomposed into ``mul`` (q and k each scaled by sqrt(scale)),
  ``bmm``, an ``add`` of the mask, ``_safe_softmax`` and ``bmm``; but during a meta trace
  modelmeter sends the calls the CPU backend fuses to its fused kernel
  (``frontends/torch/fused.py``), so only the others are counted by those ops;
- CUDA: ``_scaled_dot_product_flash_attention``, ``_scaled_dot_product_efficient_attention``
  or ``_scaled_dot_product_cudnn_attention`` (``_flash_attention_forward`` /
  ``_efficient_attention_forward`` when called directly, e.g. for nested tensors).

``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` in eval mode on real CPU tensors
take PyTorch's fast path and arrive as one ``_native_multi_head_attention`` or
``_transformer_encoder_layer_fwd`` op; on meta they decompose into linear, bmm, softmax ...

MACs of attention over b*h (query heads) score matrices of Lq x Lk: ``Q@K^T`` b*h*Lq*Lk*E and
``P@V`` b*h*Lq*Lk*Ev, i.e. PyTorch ``FlopCounterMode``'s count / 2. The full score matrix is
counted also for ``is_causal`` (and sliding windows) -- no halving -- as FlopCounterMode does.
"""

from __future__ import annotations

import math

from modelmeter.ops.norm import row_norm_flops
from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, register_op


def softmax_flops(rows: int, n: int) -> int:
    """Softmax over ``rows`` rows of n: max (n-1 compares), subtract (n), exp (n), sum (n-1
    adds), divide (n) = 5n - 2 per row, as the softmax formula counts it."""
    return rows * (5 * n - 2) if n else 0


def attention_work(
    call: OpCall,
    bh: int,
    lq: int,
    lk: int,
    e: int,
    ev: int,
    *,
    mask: bool = False,
    dropout: bool = False,
    scale_scores: bool = True,
) -> Work:
    """Cost of softmax(scale * Q K^T + mask) V over ``bh`` heads (see module docstring).

    FLOPs (exact): Q@K^T (2E-1)*S, scale 1*S, mask add 1*S when given, softmax
    (5*Lk-2)*bh*Lq, dropout 2*S (draw compare + multiply by mask/(1-p)) when p > 0,
    P@V (2*Lk-1)*bh*Lq*Ev, with S = bh*Lq*Lk scores. Under ``2mac`` the two matmuls count
    2*MACs; the rest is the same.
    """
    scores = bh * lq * lk
    qk = mac_work(call, scores * e, scores, bias=False)
    pv = mac_work(call, scores * ev, bh * lq * ev, bias=False)
    per_score = (1 if scale_scores else 0) + (1 if mask else 0) + (2 if dropout else 0)
    rest = per_score * scores + softmax_flops(bh * lq, lk)
    return Work(macs=qk.macs + pv.macs, flops=qk.flops + pv.flops + rest)


def _present(call: OpCall, *names: str) -> bool:
    """Whether one of the named arguments is a tensor with elements (an empty tensor stands
    for "no mask" in some backward calls)."""
    return any(
        isinstance(t := call.args.get(n), TensorMeta) and t.numel > 0 for n in names
    )


def _dropout(call: OpCall) -> bool:
    return float(call.arg("dropout_p", 0.0)) > 0.0


@register_op(
    "scaled_dot_product_attention",
    family="attention",
    aten=[
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable",
        "_scaled_dot_product_attention_math_for_mps",
    ],
)
def scaled_dot_product_attention(call: OpCall) -> Work:
    """Fused SDPA on q (..., H, Lq, E), k (..., Hkv, Lk, E), v (..., Hkv, Lk, Ev); GQA
    (Hkv < H) costs as H heads.
    MACs = b*H*Lq*Lk*(E + Ev) (causal or not: the full score matrix).
    FLOPs (exact) = (2E-1)*S + S (scale) + S (mask add, when a mask/bias is given)
    + (5*Lk-2)*b*H*Lq (softmax) + 2*S (dropout, when p > 0) + (2*Lk-1)*b*H*Lq*Ev,
    S = b*H*Lq*Lk.
    Bytes: q, k, v (and mask) read once; output and logsumexp written."""
    q, k, v = call.inputs[0], call.inputs[1], call.inputs[2]
    bh = math.prod(q.shape[:-2])
    mask = _present(call, "attn_mask", "attn_bias")
    return attention_work(
        call,
        bh,
        q.shape[-2],
        k.shape[-2],
        q.shape[-1],
        v.shape[-1],
        mask=mask,
        dropout=_dropout(call),
    )


@register_op(
    "attention_forward",
    family="attention",
    aten=["_flash_attention_forward", "_efficient_attention_forward", "_cudnn_attention_forward"],
)
def attention_forward(call: OpCall) -> Work:
    """The kernels under SDPA. Flash / efficient take (B, L, H, E); cudnn (B, H, L, E).
    Variable-length (nested) batches pass cumulative sequence offsets and a
    (total, H, E) query: only the maximum lengths are known from shapes, so, like
    FlopCounterMode, every sequence is counted at (max_q, max_k) -- an upper bound.
    Costs as :func:`scaled_dot_product_attention`."""
    q, k, v = call.inputs[0], call.inputs[1], call.inputs[2]
    cum_q = call.args.get("cum_seq_q", call.args.get("cu_seqlens_q"))
    mask = _present(call, "bias", "attn_bias")
    dropout = _dropout(call)
    if isinstance(cum_q, TensorMeta) and q.ndim == 3:
        seqs = max(cum_q.shape[0] - 1, 0)
        max_q = int(call.arg("max_q", call.arg("max_seqlen_q", 0)))
        max_k = int(call.arg("max_k", call.arg("max_seqlen_k", 0)))
        heads = q.shape[-2]
        return attention_work(
            call,
            seqs * heads,
            max_q,
            max_k,
            q.shape[-1],
            v.shape[-1],
            mask=mask,
            dropout=dropout,
        )
    if call.op == "_cudnn_attention_forward":  # (B, H, L, E)
        bh, lq, lk = math.prod(q.shape[:-2]), q.shape[-2], k.shape[-2]
    else:  # (B, L, H, E)
        bh, lq, lk = q.shape[0] * q.shape[2], q.shape[1], k.shape[1]
    return attention_work(call, bh, lq, lk, q.shape[-1], v.shape[-1], mask=mask, dropout=dropout)


def _mha_work(
    call: OpCall,
    query: TensorMeta,
    d: int,
    heads: int,
    mask: bool,
    key: TensorMeta | None = None,
) -> Work:
    """Attention block of the fast path: the Q, K, V projections (each a (D x D) GEMM + bias;
    one (3D x D) GEMM when query, key and value are one tensor), q rescaled by 1/sqrt(D/H):
    1 multiply per q element, attention with the scale already in q, output projection
    (D x D GEMM + bias)."""
    key = key if key is not None else query
    rows = query.numel // d if d else 0
    rows_k = key.numel // d if d else 0
    seq = query.shape[-2] if query.ndim >= 2 else 1
    seq_k = key.shape[-2] if key.ndim >= 2 else 1
    batch = rows // seq if seq else 0
    proj_q = mac_work(call, rows * d * d, rows * d, bias=True)
    proj_kv = mac_work(call, 2 * rows_k * d * d, 2 * rows_k * d, bias=True)
    att = attention_work(
        call, batch * heads, seq, seq_k, d // heads, d // heads, mask=mask, scale_scores=False
    )
    proj_out = mac_work(call, rows * d * d, rows * d, bias=True)
    return Work(
        macs=proj_q.macs + proj_kv.macs + att.macs + proj_out.macs,
        flops=proj_q.flops + proj_kv.flops + rows * d + att.flops + proj_out.flops,
    )


@register_op(
    "native_multi_head_attention", family="attention", aten=["_native_multi_head_attention"]
)
def native_multi_head_attention(call: OpCall) -> Work:
    """``nn.MultiheadAttention`` fast path on (B, T, D) self-attention with H heads (the
    op also accepts a key/value of S positions: T x S scores, K and V projections of S rows).
    MACs = B*T*D*3D (QKV) + 2*B*H*T*T*(D/H) (attention) + B*T*D*D (output projection).
    FLOPs: the projections with bias 2*MACs each (exact) + B*T*D (q rescale) + attention
    without a separate scale (mask 1 per score when given, softmax 5n-2 per row); when the
    averaged attention weights are returned, (H-1) adds + 1 divide per (B, T, S) weight."""
    query = call.inputs[0]
    key = call.args.get("key")
    key = key if isinstance(key, TensorMeta) else query
    d = int(call.arg("embed_dim", query.shape[-1]))
    heads = int(call.arg("num_head", 1))
    work = _mha_work(call, query, d, heads, _present(call, "mask"), key)
    flops = work.flops
    if call.arg("need_weights", True) and call.arg("average_attn_weights", True):
        seq = query.shape[-2] if query.ndim >= 2 else 1
        seq_k = key.shape[-2] if key.ndim >= 2 else 1
        flops += (query.numel // d // seq) * seq * seq_k * heads
    return Work(macs=work.macs, flops=flops)


_GELU_FLOPS = 5  # erf form, as the activation family counts it
_RELU_FLOPS = 1


@register_op(
    "transformer_encoder_layer", family="attention", aten=["_transformer_encoder_layer_fwd"]
)
def transformer_encoder_layer(call: OpCall) -> Work:
    """``nn.TransformerEncoderLayer`` fast path on (B, T, D), H heads, feed-forward width F:
    the self-attention block of ``native_multi_head_attention`` (without weights), two
    residual adds (B*T*D each), two layer norms with affine (7 per element + 2 per row), and
    the feed-forward linear(D->F) + activation (relu 1, gelu 5 per element) + linear(F->D).
    MACs = B*T*(3D^2 + D^2 + 2*D*F) + 2*B*H*T*T*(D/H)."""
    src = call.inputs[0]
    d = int(call.arg("embed_dim", src.shape[-1]))
    heads = int(call.arg("num_heads", 1))
    w1 = call.args.get("ffn_weight_1")
    ffn = w1.shape[0] if isinstance(w1, TensorMeta) else 4 * d
    rows = src.numel // d if d else 0
    att = _mha_work(call, src, d, heads, _present(call, "mask"))
    lin1 = mac_work(call, rows * d * ffn, rows * ffn, bias=True)
    lin2 = mac_work(call, rows * ffn * d, rows * d, bias=True)
    act = rows * ffn * (_GELU_FLOPS if call.arg("use_gelu", False) else _RELU_FLOPS)
    norms = 2 * row_norm_flops(rows * d, rows, True, True)
    residual = 2 * rows * d
    return Work(
        macs=att.macs + lin1.macs + lin2.macs,
        flops=att.flops + lin1.flops + lin2.flops + act + norms + residual,
    )


# ---- backward ------------------------------------------------------------------------------


def attention_backward_work(
    call: OpCall,
    bh: int,
    bh_kv: int,
    lq: int,
    lk: int,
    e: int,
    ev: int,
    *,
    mask: bool = False,
    dropout: bool = False,
) -> Work:
    """Cost of the FlashAttention-style backward of softmax(scale * Q K^T + mask) V over ``bh``
    query heads (``bh_kv`` key/value heads), S = bh*Lq*Lk scores.

    Products (MACs, as ``FlopCounterMode``: S*(3E + 2Ev)): recompute Q@K^T (S*E),
    dP = dO@V^T (S*Ev), dV = P^T@dO (S*Ev), dQ = dS@K (S*E), dK = dS^T@Q (S*E); each costs
    2*MACs - its outputs in ``exact`` (dV and dK have bh_kv*Lk rows: GQA sums the group's
    heads in the same sums), 2*MACs in ``2mac``.
    Per score: scale 1, mask add 1 (when given), P = exp(s - logsumexp) 2,
    dS = P*(dP - D) 2, scale dS 1, dropout 3 (regenerate the keep mask, apply it to P and to dP)
    when p > 0. Per query row: D = rowsum(dO * O): 2*Ev - 1."""
    s = bh * lq * lk
    parts = [
        mac_work(call, s * e, s, bias=False),  # Q@K^T recomputed
        mac_work(call, s * ev, s, bias=False),  # dP
        mac_work(call, s * ev, bh_kv * lk * ev, bias=False),  # dV
        mac_work(call, s * e, bh * lq * e, bias=False),  # dQ
        mac_work(call, s * e, bh_kv * lk * e, bias=False),  # dK
    ]
    per_score = 1 + (1 if mask else 0) + 2 + 2 + 1 + (3 if dropout else 0)
    rest = per_score * s + bh * lq * max(0, 2 * ev - 1)
    return Work(
        macs=sum(p.macs for p in parts), flops=sum(p.flops for p in parts) + rest
    )


@register_op(
    "scaled_dot_product_attention_backward",
    family="attention",
    aten=[
        "_scaled_dot_product_flash_attention_for_cpu_backward",
        "_scaled_dot_product_flash_attention_backward",
        "_scaled_dot_product_efficient_attention_backward",
        "_scaled_dot_product_cudnn_attention_backward",
        "_scaled_dot_product_fused_attention_overrideable_backward",
        "_flash_attention_backward",
        "_efficient_attention_backward",
        "_cudnn_attention_backward",
    ],
)
def scaled_dot_product_attention_backward(call: OpCall) -> Work:
    """Backward of the fused attention kernels: gradients of q (..., H, Lq, E), k and v
    (..., Hkv, Lk, E/Ev); ``_flash/_efficient_attention_backward`` take (B, L, H, E), or a
    (total, H, E) variable-length batch counted, like the forward, at the maximum lengths.
    MACs = b*H*Lq*Lk*(3E + 2Ev) (``FlopCounterMode``'s count / 2; causal or not, the full
    score matrix). Exact FLOPs per :func:`attention_backward_work`: the five products
    2*MACs - outputs each, + per score 6 (scale 1, exp(s - lse) 2, dS = P*(dP - D) 2,
    scale dS 1; + 1 with a mask, + 3 with dropout) + per query row 2*Ev - 1 (D)."""
    q, k, v = (call.args.get(n) for n in ("query", "key", "value"))
    if not all(isinstance(t, TensorMeta) for t in (q, k, v)):
        q, k, v = call.inputs[1], call.inputs[2], call.inputs[3]
    mask = _present(call, "attn_mask", "attn_bias", "bias")
    dropout = _dropout(call)
    e, ev = q.shape[-1], v.shape[-1]
    if call.op in ("_flash_attention_backward", "_efficient_attention_backward"):
        if q.ndim == 3:  # variable length: (total, H, E) with cumulative offsets
            cum = call.args.get("cum_seq_q", call.args.get("cu_seqlens_q"))
            seqs = max(cum.shape[0] - 1, 0) if isinstance(cum, TensorMeta) else 1
            lq = int(call.arg("max_q", call.arg("max_seqlen_q", q.shape[0])))
            lk = int(call.arg("max_k", call.arg("max_seqlen_k", k.shape[0])))
            bh, bh_kv = seqs * q.shape[-2], seqs * k.shape[-2]
        else:  # (B, L, H, E)
            bh, bh_kv = q.shape[0] * q.shape[2], k.shape[0] * k.shape[2]
            lq, lk = q.shape[1], k.shape[1]
    else:  # (..., H, L, E)
        bh, bh_kv = math.prod(q.shape[:-2]), math.prod(k.shape[:-2])
        lq, lk = q.shape[-2], k.shape[-2]
    return attention_backward_work(call, bh, bh_kv, lq, lk, e, ev, mask=mask, dropout=dropout)
