"""onnxruntime's fused ops (domain ``com.microsoft``, and the contrib ops it registers in the
standard domain): their output shapes, and how each is counted.

ONNX's shape inference does not know these ops, so without a rule every value after the first
fused node would be unknown. ``SHAPES`` gives the rules (a fused op has the shape of the
standard op it replaces).

A fused op that onnxruntime's graph optimiser writes (``ORT_ENABLE_EXTENDED``) is the fusion
of standard ops that have formulas; ``PARTS`` writes each as those ops, so that the one
formula of each part counts it (docs/onnx.md, "onnxruntime-optimised graphs"):

- ``FusedConv`` = Conv (+ Add of ``Z``) + its activation; ``FusedGemm`` = Gemm + activation;
  ``FusedMatMul`` = MatMul of the transposed operands (+ Mul by ``alpha`` when it is not 1);
- ``Gelu`` = Gelu (erf); ``FastGelu`` = (Add bias +) Gelu (tanh); ``BiasGelu`` = Add + Gelu;
  ``QuickGelu`` = (Mul by ``alpha`` +) Sigmoid + Mul (x * sigmoid(alpha * x));
- ``SkipLayerNormalization`` = Add(input, skip) (+ Add bias) + LayerNormalization;
  ``SkipSimplifiedLayerNormalization`` the same with RMSNormalization;
  ``SimplifiedLayerNormalization`` = RMSNormalization; ``BiasAdd`` = Add + Add;
  ``BiasSoftmax`` = Add + Softmax.

Bytes are those of the parts, as everywhere else in modelmeter: unfused (the fused kernel does
not write its intermediates, so it moves fewer). Fused attention (``Attention``,
``MultiHeadAttention``, ``GroupQueryAttention``), ``EmbedLayerNormalization`` and
``RotaryEmbedding`` get shapes but no parts: they are listed as unsupported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Dims = tuple[int | str | None, ...]
MS = "com.microsoft"


# ---- shapes ------------------------------------------------------------------------------------
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


def _input(node: Any, i: int) -> str:
    return node.input[i] if i < len(node.input) else ""


def _output(node: Any, i: int) -> str:
    return node.output[i] if i < len(node.output) else ""


def _set(types: Any, out: dict[str, Dims | None], name: str, dims: Dims | None,
         elem: int) -> None:
    if name and dims is not None:
        out[name] = tuple(dims)
        if elem and not types.elem.get(name):
            types.elem[name] = elem


def _like_input(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Every output has the shape and type of the first input (elementwise ops)."""
    x = _input(node, 0)
    out: dict[str, Dims | None] = {}
    for name in node.output:
        _set(types, out, name, types.dims.get(x), types.elem.get(x, 0))
    return out


def _norm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Output 0 (and a skip norm's sum, output 3) like the input; the saved statistics
    (outputs 1, 2) keep the dims before ``axis`` and are 1 after it."""
    x = _input(node, 0)
    dims, elem = types.dims.get(x), types.elem.get(x, 0)
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), dims, elem)
    _set(types, out, _output(node, 3), dims, elem)
    if dims is not None and dims:
        axis = int(_attrs(node).get("axis", -1))
        axis = axis % len(dims) if -len(dims) <= axis < len(dims) else len(dims) - 1
        stats = tuple(dims[:axis]) + (1,) * (len(dims) - axis)
        _set(types, out, _output(node, 1), stats, 1)
        _set(types, out, _output(node, 2), stats, 1)
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


_ACTIVATION_ATTRS = ("activation", "activation_params", "activation_alpha", "activation_beta",
                     "activation_gamma")


def _fused_conv(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    return infer(_as_standard(node, "Conv", 3, _ACTIVATION_ATTRS))


def _fused_gemm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    return infer(_as_standard(node, "Gemm", 3, _ACTIVATION_ATTRS))


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
    a, b = types.dims.get(_input(node, 0)), types.dims.get(_input(node, 1))
    if a is None or b is None or attrs.get("transBatchA") or attrs.get("transBatchB"):
        return {}
    a = _swap(a) if attrs.get("transA") else a
    b = _swap(b) if attrs.get("transB") else b
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), matmul_dims(a, b), types.elem.get(_input(node, 0), 0))
    return out


def _attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """Attention(input (B, S, Hin), weights (Hin, Hq + Hk + Hv), ...): output (B, S, Hv)."""
    x, w = types.dims.get(_input(node, 0)), types.dims.get(_input(node, 1))
    if x is None or w is None or len(x) != 3 or len(w) != 2:
        return {}
    sizes = _attrs(node).get("qkv_hidden_sizes")
    if sizes and len(sizes) == 3:
        hv: int | str | None = sizes[2]
    else:
        hv = w[1] // 3 if isinstance(w[1], int) else None
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), (x[0], x[1], hv), types.elem.get(_input(node, 0), 0))
    return out


def _multi_head_attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """MultiHeadAttention(query (B, S, D), key, value (B, L, Dv) or (B, N, L, H)): output
    (B, S, Dv); packed QKV query (B, S, N, 3, H): (B, S, N*H)."""
    q = types.dims.get(_input(node, 0))
    v = types.dims.get(_input(node, 2)) if _input(node, 2) else None
    if q is None:
        return {}
    dv: Any = None
    if v is not None and len(v) == 3:
        dv = v[2]
    elif v is not None and len(v) == 4 and isinstance(v[1], int) and isinstance(v[3], int):
        dv = v[1] * v[3]
    elif not _input(node, 1) and len(q) == 5 and all(isinstance(d, int) for d in q[2:]):
        dv = q[2] * q[4]
    elif len(q) == 3 and _input(node, 1) and v is None:
        dv = q[2]
    if dv is None or len(q) < 3:
        return {}
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), (q[0], q[1], dv), types.elem.get(_input(node, 0), 0))
    return out


def _group_query_attention(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """GroupQueryAttention(query (B, S, D), ...): output (B, S, num_heads * head_size); with a
    packed query (no key) D = (num_heads + 2 kv_num_heads) * head_size."""
    q = types.dims.get(_input(node, 0))
    if q is None or len(q) != 3:
        return {}
    attrs = _attrs(node)
    d: Any = q[2]
    if not _input(node, 1):
        heads, kv = int(attrs.get("num_heads", 0)), int(attrs.get("kv_num_heads", 0))
        if not isinstance(d, int) or heads + 2 * kv <= 0:
            return {}
        d = d // (heads + 2 * kv) * heads
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), (q[0], q[1], d), types.elem.get(_input(node, 0), 0))
    return out


def _embed_layer_norm(node: Any, types: Any, infer: Any) -> dict[str, Dims | None]:
    """EmbedLayerNormalization(input_ids (B, S), segment_ids, word_embedding (V, H), ...):
    output (B, S, H), mask_index (B,) int32, embedding_sum (B, S, H)."""
    ids, emb = types.dims.get(_input(node, 0)), types.dims.get(_input(node, 2))
    if ids is None or emb is None or len(ids) != 2 or len(emb) != 2:
        return {}
    elem = types.elem.get(_input(node, 2), 0)
    out: dict[str, Dims | None] = {}
    _set(types, out, _output(node, 0), (ids[0], ids[1], emb[1]), elem)
    _set(types, out, _output(node, 1), (ids[0],), 6)
    _set(types, out, _output(node, 2), (ids[0], ids[1], emb[1]), elem)
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


# ---- parts -------------------------------------------------------------------------------------
@dataclass
class Part:
    """One standard op a fused node is counted as. ``inputs``/``outputs`` are indices into
    the node's inputs/outputs, or names of intermediates (``"s"``...) that the parts pass
    along; an input may also be ``("out", i)`` (the node's output i, written by an earlier
    part), ``("T", i)`` (input i with its last two dims swapped), ``("view", ref, dims)`` (an
    operand or output read or written with other dims, the same storage) or
    ``("scalar", value)`` (a constant scalar operand); None: absent. Intermediates have the
    shape of the node's first output unless ``shapes`` gives theirs. ``dims(i)`` in a rule
    gives input i's dims (an error naming the input when they are unknown)."""

    op: str
    inputs: list[Any]
    outputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # of its intermediates


def _present(node: Any, i: int) -> int | None:
    return i if _input(node, i) else None


# FusedConv/FusedGemm activations -> the standard op and its attributes from the parameters
def _activation(attrs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    act = attrs.get("activation", "")
    params = list(attrs.get("activation_params", []))
    alpha = attrs.get("activation_alpha", params[0] if params else None)
    beta = attrs.get("activation_beta", params[1] if len(params) > 1 else None)
    if act in ("Relu", "Sigmoid", "Tanh"):
        return act, {}
    if act == "LeakyRelu":
        return act, {} if alpha is None else {"alpha": alpha}
    if act == "HardSigmoid":
        return act, {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v is not None}
    if act == "Clip" and len(params) == 2:  # both bounds given
        return act, {"min": params[0], "max": params[1]}
    return None


def _parts_fused_conv(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part] | None:
    conv = {k: v for k, v in attrs.items() if k not in _ACTIVATION_ATTRS}
    parts = [Part("Conv", [0, 1, _present(node, 2)], ["c"], conv)]
    last = "c"
    if _present(node, 3) is not None:
        parts.append(Part("Add", [last, 3], ["z"]))
        last = "z"
    if attrs.get("activation"):
        act = _activation(attrs)
        if act is None:
            return None
        parts.append(Part(act[0], [last], ["a"], act[1]))
    parts[-1].outputs = [0]
    return parts


def _parts_fused_gemm(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part] | None:
    gemm = {k: v for k, v in attrs.items() if k not in _ACTIVATION_ATTRS}
    parts = [Part("Gemm", [0, 1, _present(node, 2)], ["g"], gemm)]
    if attrs.get("activation"):
        act = _activation(attrs)
        if act is None:
            return None
        parts.append(Part(act[0], ["g"], ["a"], act[1]))
    parts[-1].outputs = [0]
    return parts


def _parts_fused_matmul(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part] | None:
    if attrs.get("transBatchA") or attrs.get("transBatchB"):
        return None
    a = ("T", 0) if attrs.get("transA") else 0
    b = ("T", 1) if attrs.get("transB") else 1
    alpha = float(attrs.get("alpha", 1.0))
    if alpha == 1.0:
        return [Part("MatMul", [a, b], [0])]
    return [Part("MatMul", [a, b], ["m"]), Part("Mul", ["m", ("scalar", alpha)], [0])]


def _parts_gelu(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    return [Part("Gelu", [0], [0], {"approximate": "none"})]


def _parts_bias_gelu(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    return [Part("Add", [0, 1], ["s"]), Part("Gelu", ["s"], [0], {"approximate": "none"})]


def _parts_fast_gelu(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    if _present(node, 1) is None:
        return [Part("Gelu", [0], [0], {"approximate": "tanh"})]
    return [Part("Add", [0, 1], ["s"]), Part("Gelu", ["s"], [0], {"approximate": "tanh"})]


def _parts_quick_gelu(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    alpha = float(attrs.get("alpha", 1.702))
    if alpha == 1.0:  # x * sigmoid(x): SiLU
        return [Part("Sigmoid", [0], ["s"]), Part("Mul", [0, "s"], [0])]
    return [
        Part("Mul", [0, ("scalar", alpha)], ["ax"]),
        Part("Sigmoid", ["ax"], ["s"]),
        Part("Mul", [0, "s"], [0]),
    ]


def _skip_norm(norm: str, gamma: int, beta: int | None, bias: int):  # noqa: ANN202
    def parts(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
        out = [Part("Add", [0, 1], ["s"])]
        if _present(node, bias) is not None:
            out.append(Part("Add", ["s", bias], ["sb"]))
        last = out[-1]
        src: Any = last.outputs[0]
        if _output(node, 3):  # the sum is also an output: the Add writes it
            last.outputs = [3]
            src = ("out", 3)
        ins = [src, gamma] + ([_present(node, beta)] if beta is not None else [])
        eps = {"epsilon": attrs["epsilon"]} if "epsilon" in attrs else {}
        out.append(Part(norm, ins, [0, 1, 2], {"axis": -1, **eps}))
        return out

    return parts


def _parts_simplified_norm(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    keep = {k: v for k, v in attrs.items() if k in ("axis", "epsilon")}
    return [Part("RMSNormalization", [0, 1], [0, 1], keep)]


def _parts_bias_add(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    return [Part("Add", [0, 1], ["s"]), Part("Add", ["s", 2], [0])]


def _parts_bias_softmax(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part]:
    return [Part("Add", [0, 1], ["s"]), Part("Softmax", ["s"], [0], {"axis": attrs.get("axis", -1)})]


def _parts_attention(node: Any, attrs: dict[str, Any], dims: Any = None) -> list[Part] | None:
    """ONNX's Attention (opset 23): softmax(scale * Q K^T + mask) V, as the ops its function
    body runs: MatMul, Mul (scale), Add (mask), Softmax, MatMul -- the MACs and FLOPs of the
    SDPA formula. Q, K, V are (B, H, L, E) or (B, L, H*E) with ``q_num_heads`` and
    ``kv_num_heads``; past keys and values are concatenated first (Concat, writing the
    ``present`` outputs). With fewer key/value heads (GQA) the g = Hq/Hkv query heads of a
    group share their keys: the products run on (B, Hkv, g*Lq, E) x (B, Hkv, E, T), the
    same MACs without copying K and V. Soft-capping and the optional raw-score output are not
    counted (the node stays unsupported)."""
    if attrs.get("softcap") or _output(node, 3) or dims is None:
        return None
    q, k, v = dims(0), dims(1), dims(2)
    if len(q) == 3:
        hq = int(attrs.get("q_num_heads", 0))
        hkv = int(attrs.get("kv_num_heads", 0))
        if hq <= 0 or hkv <= 0 or q[2] % hq or k[2] % hkv or v[2] % hkv:
            return None
        q4 = (q[0], hq, q[1], q[2] // hq)
        k4 = (k[0], hkv, k[1], k[2] // hkv)
        v4 = (v[0], hkv, v[1], v[2] // hkv)
    elif len(q) == 4 and len(k) == 4 and len(v) == 4:
        q4, k4, v4 = q, k, v
    else:
        return None
    b, hq, lq, e = q4
    hkv, ev = k4[1], v4[3]
    if hkv <= 0 or hq % hkv:
        return None
    g = hq // hkv
    parts: list[Part] = []
    key: Any = ("view", 1, k4)
    value: Any = ("view", 2, v4)
    if _present(node, 4) is not None and _present(node, 5) is not None:  # a KV cache
        pk, pv = dims(4), dims(5)
        k4 = (b, hkv, pk[2] + k4[2], e)
        v4 = (b, hkv, pv[2] + v4[2], ev)
        for i, past, new, full, name in ((1, 4, key, k4, "k"), (2, 5, value, v4, "v")):
            out = i if _output(node, i) else name
            parts.append(Part("Concat", [past, new], [out], {"axis": 2}, {name: full}))
        key = ("view", ("out", 1) if _output(node, 1) else "k", k4)
        value = ("view", ("out", 2) if _output(node, 2) else "v", v4)
    t = k4[2]
    scores = (b, hkv, g * lq, t)
    parts += [
        Part("MatMul", [("view", 0, (b, hkv, g * lq, e)), ("view", key, (b, hkv, e, t))],
             ["qk"], shapes={"qk": scores}),
        Part("Mul", ["qk", ("scalar", attrs.get("scale", 1.0))], ["s"], shapes={"s": scores}),
    ]
    last = "s"
    if _present(node, 3) is not None:
        parts.append(Part("Add", [last, 3], ["m"], shapes={"m": scores}))
        last = "m"
    parts += [
        Part("Softmax", [last], ["p"], {"axis": -1}, {"p": scores}),
        Part("MatMul", ["p", value], [("view", 0, (b, hkv, g * lq, ev))]),
    ]
    return parts


PartsRule = Callable[[Any, dict[str, Any], Any], "list[Part] | None"]
PARTS: dict[str, PartsRule] = {
    f"{MS}.FusedConv": _parts_fused_conv,
    f"{MS}.FusedGemm": _parts_fused_gemm,
    f"{MS}.FusedMatMul": _parts_fused_matmul,
    f"{MS}.Gelu": _parts_gelu,
    f"{MS}.BiasGelu": _parts_bias_gelu,
    f"{MS}.FastGelu": _parts_fast_gelu,
    f"{MS}.QuickGelu": _parts_quick_gelu,
    f"{MS}.SkipLayerNormalization": _skip_norm("LayerNormalization", 2, 3, 4),
    f"{MS}.SkipSimplifiedLayerNormalization": _skip_norm("RMSNormalization", 2, None, 3),
    "SimplifiedLayerNormalization": _parts_simplified_norm,
    f"{MS}.BiasAdd": _parts_bias_add,
    f"{MS}.BiasSoftmax": _parts_bias_softmax,
    "Attention": _parts_attention,  # ONNX opset 23 (the dynamo exporter's SDPA from opset 23)
}


__all__ = ["PARTS", "Part", "SHAPES", "matmul_dims"]
