"""onnxruntime's fused ops counted as the standard ops they fuse (their shapes:
:mod:`.contrib`).

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

from modelmeter.frontends.onnx.contrib import ACTIVATION_ATTRS, MS, input_name, output_name


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
    return i if input_name(node, i) else None


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
    conv = {k: v for k, v in attrs.items() if k not in ACTIVATION_ATTRS}
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
    gemm = {k: v for k, v in attrs.items() if k not in ACTIVATION_ATTRS}
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
        if output_name(node, 3):  # the sum is also an output: the Add writes it
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
    if attrs.get("softcap") or output_name(node, 3) or dims is None:
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
            out = i if output_name(node, i) else name
            parts.append(Part("Concat", [past, new], [out], {"axis": 2}, {name: full}))
        key = ("view", ("out", 1) if output_name(node, 1) else "k", k4)
        value = ("view", ("out", 2) if output_name(node, 2) else "v", v4)
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




__all__ = ["PARTS", "Part", "PartsRule"]
