"""onnxruntime's fused ops (domain ``com.microsoft``, and the contrib ops it registers in the
standard domain): their output shapes.

ONNX's shape inference does not know these ops, so without a rule every value after the first
fused node would be unknown. ``SHAPES`` gives the rules (a fused op has the shape of the
standard op it replaces).

How each is counted (as the standard ops it fuses): :mod:`.fusedparts`. Fused attention
(``Attention``, ``MultiHeadAttention``, ``GroupQueryAttention``), ``EmbedLayerNormalization``
and ``RotaryEmbedding`` get shapes but no parts: they are listed as unsupported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Dims = tuple[int | str | None, ...]
MS = "com.microsoft"


def _attrs(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == 1:
            out[a.name] = a.f
        elif a.type == 2:
            out[a.name] = int(a.i)
        elif a.type == 3:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif a.type == 6:
            out[a.name] = list(a.floats)
        elif a.type == 7:
            out[a.name] = [int(v) for v in a.ints]
    return out


def input_name(node: Any, i: int) -> str:
    return node.input[i] if i < len(node.input) else ""


def output_name(node: Any, i: int) -> str:
    return node.output[i] if i < len(node.output) else ""


def _set(types: Any, out: dict[str, Dims | None], name: str, dims: Dims | None,
         elem: int) -> None:
    if name and dims is not None:
        out[name] = tuple(dims)
        if elem and not types.elem.get(name):
            types.elem[name] = elem


def _like_input(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Every output has the shape and type of the first input (elementwise ops)."""
    x = input_name(node, 0)
    out: dict[str, Dims | None] = {}
    for name in node.output:
        _set(types, out, name, types.dims.get(x), types.elem.get(x, 0))
    return out


def _norm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Output 0 (and a skip norm's sum, output 3) like the input; the saved statistics
    (outputs 1, 2) keep the dims before ``axis`` and are 1 after it."""
    x = input_name(node, 0)
    dims, elem = types.dims.get(x), types.elem.get(x, 0)
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), dims, elem)
    _set(types, out, output_name(node, 3), dims, elem)
    if dims is not None and dims:
        axis = int(_attrs(node).get("axis", -1))
        axis = axis % len(dims) if -len(dims) <= axis < len(dims) else len(dims) - 1
        stats = tuple(dims[:axis]) + (1,) * (len(dims) - axis)
        _set(types, out, output_name(node, 1), stats, 1)
        _set(types, out, output_name(node, 2), stats, 1)
    return out


def _as_standard(node: Any, op: str, inputs: int, drop: tuple[str, ...]) -> Any:
    """A copy of ``node`` as the standard op it fuses (its first ``inputs`` inputs)."""
    from modelmeter.frontends.onnx.load import onnx_module

    std = onnx_module().NodeProto()
    std.CopyFrom(node)
    std.domain, std.op_type = "", op
    del std.input[inputs:]
    del std.output[1:]
    keep = [a for a in std.attribute if a.name not in drop]
    del std.attribute[:]
    std.attribute.extend(keep)
    return std


ACTIVATION_ATTRS = ("activation", "activation_params", "activation_alpha", "activation_beta",
                     "activation_gamma")


def _fused_conv(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    return infer(_as_standard(node, "Conv", 3, ACTIVATION_ATTRS))


def _fused_gemm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    return infer(_as_standard(node, "Gemm", 3, ACTIVATION_ATTRS))


def _broadcast(a: Dims, b: Dims) -> Dims:
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    return tuple(y if x == 1 else x if (y == 1 or x == y) else None for x, y in zip(a, b))


def matmul_dims(a: Dims, b: Dims) -> Dims:
    """NumPy matmul's output dims (symbols kept where they pass through)."""
    if len(a) == 1 and len(b) == 1:
        return ()
    a2 = a if len(a) >= 2 else (1, *a)
    b2 = b if len(b) >= 2 else (*b, 1)
    dims = _broadcast(a2[:-2], b2[:-2])
    if len(a) >= 2:
        dims += (a2[-2],)
    if len(b) >= 2:
        dims += (b2[-1],)
    return dims


def _swap(dims: Dims) -> Dims:
    return (*dims[:-2], dims[-1], dims[-2]) if len(dims) >= 2 else dims


def _fused_matmul(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    attrs = _attrs(node)
    a, b = types.dims.get(input_name(node, 0)), types.dims.get(input_name(node, 1))
    if a is None or b is None or attrs.get("transBatchA") or attrs.get("transBatchB"):
        return {}
    a = _swap(a) if attrs.get("transA") else a
    b = _swap(b) if attrs.get("transB") else b
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), matmul_dims(a, b), types.elem.get(input_name(node, 0), 0))
    return out


def _attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Attention(input (B, S, Hin), weights (Hin, Hq + Hk + Hv), ...): output (B, S, Hv)."""
    x, w = types.dims.get(input_name(node, 0)), types.dims.get(input_name(node, 1))
    if x is None or w is None or len(x) != 3 or len(w) != 2:
        return {}
    sizes = _attrs(node).get("qkv_hidden_sizes")
    if sizes and len(sizes) == 3:
        hv: int | str | None = sizes[2]
    else:
        hv = w[1] // 3 if isinstance(w[1], int) else None
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), (x[0], x[1], hv), types.elem.get(input_name(node, 0), 0))
    return out


def _multi_head_attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """MultiHeadAttention(query (B, S, D), key, value (B, L, Dv) or (B, N, L, H)): output
    (B, S, Dv); packed QKV query (B, S, N, 3, H): (B, S, N*H)."""
    q = types.dims.get(input_name(node, 0))
    v = types.dims.get(input_name(node, 2)) if input_name(node, 2) else None
    if q is None:
        return {}
    dv: Any = None
    if v is not None and len(v) == 3:
        dv = v[2]
    elif v is not None and len(v) == 4 and isinstance(v[1], int) and isinstance(v[3], int):
        dv = v[1] * v[3]
    elif not input_name(node, 1) and len(q) == 5 and all(isinstance(d, int) for d in q[2:]):
        dv = q[2] * q[4]
    elif len(q) == 3 and input_name(node, 1) and v is None:
        dv = q[2]
    if dv is None or len(q) < 3:
        return {}
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), (q[0], q[1], dv), types.elem.get(input_name(node, 0), 0))
    return out


def _group_query_attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """GroupQueryAttention(query (B, S, D), ...): output (B, S, num_heads * head_size); with a
    packed query (no key) D = (num_heads + 2 kv_num_heads) * head_size."""
    q = types.dims.get(input_name(node, 0))
    if q is None or len(q) != 3:
        return {}
    attrs = _attrs(node)
    d: Any = q[2]
    if not input_name(node, 1):
        heads, kv = int(attrs.get("num_heads", 0)), int(attrs.get("kv_num_heads", 0))
        if not isinstance(d, int) or heads + 2 * kv <= 0:
            return {}
        d = d // (heads + 2 * kv) * heads
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), (q[0], q[1], d), types.elem.get(input_name(node, 0), 0))
    return out


def _embed_layer_norm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """EmbedLayerNormalization(input_ids (B, S), segment_ids, word_embedding (V, H), ...):
    output (B, S, H), mask_index (B,) int32, embedding_sum (B, S, H)."""
    ids, emb = types.dims.get(input_name(node, 0)), types.dims.get(input_name(node, 2))
    if ids is None or emb is None or len(ids) != 2 or len(emb) != 2:
        return {}
    elem = types.elem.get(input_name(node, 2), 0)
    out: dict[str, Dims | None] = {}
    _set(types, out, output_name(node, 0), (ids[0], ids[1], emb[1]), elem)
    _set(types, out, output_name(node, 1), (ids[0],), 6)
    _set(types, out, output_name(node, 2), (ids[0], ids[1], emb[1]), elem)
    return out


ShapeRule = Callable[[Any, Any, Any], "dict[str, Dims | None]"]
SHAPES: dict[tuple[str, str], ShapeRule] = {
    (MS, "FusedConv"): _fused_conv,
    (MS, "FusedGemm"): _fused_gemm,
    (MS, "FusedMatMul"): _fused_matmul,
    **{(MS, op): _like_input for op in (
        "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "BiasSoftmax",
        "RotaryEmbedding",
    )},
    (MS, "SkipLayerNormalization"): _norm,
    (MS, "SkipSimplifiedLayerNormalization"): _norm,
    ("", "SimplifiedLayerNormalization"): _norm,
    ("", "LayerNormalization"): _norm,  # onnxruntime writes it at opsets before 17 too
    (MS, "Attention"): _attention,
    (MS, "MultiHeadAttention"): _multi_head_attention,
    (MS, "GroupQueryAttention"): _group_query_attention,
    (MS, "EmbedLayerNormalization"): _embed_layer_norm,
}


__all__ = ["ACTIVATION_ATTRS", "MS", "SHAPES", "Dims", "input_name", "matmul_dims", "output_name"]
