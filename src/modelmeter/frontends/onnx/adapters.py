"""From an ONNX node to the OpCall its formula reads.

The default is plain: ``args`` holds the node's attributes by their ONNX names (strings
decoded), ``inputs`` the tensors it reads in order (missing optional inputs left out) and
``outputs`` what it writes. Formulas shared with ATen read ATen argument names; the adapters
below add exactly those for the ONNX ops that need them, so that one formula serves both
frontends:

- Conv / ConvTranspose -> ``convolution``: ``bias``, ``transposed``, ``groups``;
- Gemm -> ``addmm``: ``mat1``/``mat2`` with ``transA``/``transB`` applied to their shapes,
  ``alpha``, and ``beta`` (0 without C);
- pooling: ``strides`` (ONNX default 1, not the kernel as in PyTorch) and explicit ``pads``
  for ``auto_pad`` SAME_UPPER/SAME_LOWER;
- Gather / GatherElements / GatherND / Slice -> gather-like formulas: ``self`` (the source,
  of which only the selected elements are read);
- CumSum: ``axis`` from its constant input;
- CastLike: only its first input is read (the second gives the dtype);
- SplitToSequence: the pieces it writes, as one tensor of the input's size;
- quantised ops (ONNX-only formulas): every input also by its ONNX schema name (``x``,
  ``w``, ``x_zero_point`` ...), since optional inputs may be missing in the middle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from modelmeter.errors import InputError
from modelmeter.registry import TensorMeta


@dataclass
class NodeView:
    op: str
    attrs: dict[str, Any]
    inputs: list[TensorMeta | None]  # aligned with node.input; None where missing
    outputs: list[TensorMeta | None]
    value: Callable[[int], Any]  # the constant value of input i, or None


Adapted = tuple[dict[str, Any], tuple[TensorMeta, ...], tuple[TensorMeta, ...]]


def _present(ts: list[TensorMeta | None]) -> tuple[TensorMeta, ...]:
    return tuple(t for t in ts if t is not None)


def _at(view: NodeView, i: int) -> TensorMeta | None:
    return view.inputs[i] if i < len(view.inputs) else None


def adapt(view: NodeView) -> Adapted:
    fn = ADAPTERS.get(view.op)
    args = dict(view.attrs)
    ins, outs = _present(view.inputs), _present(view.outputs)
    if fn is None:
        return args, ins, outs
    return fn(view, args, ins, outs)


def _conv(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    x, w = _at(view, 0), _at(view, 1)
    group = view.attrs.get("group", 1)
    if not isinstance(group, int) or group < 1:
        raise InputError(f"group is {group}; it must be a positive integer")
    if x is not None and w is not None and len(x.shape) >= 2 and len(w.shape) >= 2:
        if view.op == "Conv":  # weight (Co, Ci/group, *k)
            expected, why = w.shape[1] * group, f"group {group} x weight dim 1"
        else:  # ConvTranspose: weight (Ci, Co/group, *k)
            expected, why = w.shape[0], "weight dim 0"
        if x.shape[1] != expected:
            raise InputError(
                f"the input has {x.shape[1]} channels but the weight "
                f"{'x'.join(map(str, w.shape))} expects {expected} ({why})"
            )
        if w.shape[0] % group:
            raise InputError(f"weight dim 0 ({w.shape[0]}) is not divisible by group {group}")
    args.update(
        bias=_at(view, 2),
        transposed=view.op == "ConvTranspose",
        groups=int(view.attrs.get("group", 1)),
    )
    return args, ins, outs


def _gemm(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    a, b, c = _at(view, 0), _at(view, 1), _at(view, 2)
    assert a is not None and b is not None
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise InputError(
            f"Gemm multiplies 2-D matrices; its inputs are "
            f"{'x'.join(map(str, a.shape)) or 'scalar'} and "
            f"{'x'.join(map(str, b.shape)) or 'scalar'}"
        )
    if view.attrs.get("transA", 0):
        a = replace(a, shape=tuple(reversed(a.shape)))
    if view.attrs.get("transB", 0):
        b = replace(b, shape=tuple(reversed(b.shape)))
    beta = float(view.attrs.get("beta", 1.0)) if c is not None else 0
    args.update(mat1=a, mat2=b, alpha=float(view.attrs.get("alpha", 1.0)), beta=beta)
    return args, ins, outs


def _same_pads(size: int, out: int, k: int, s: int, d: int, upper: bool) -> tuple[int, int]:
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def _pool(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    x, y = ins[0], outs[0]
    kernel = list(view.attrs.get("kernel_shape", ()))
    k = len(kernel)
    strides = list(view.attrs.get("strides", [1] * k))
    dilations = list(view.attrs.get("dilations", [1] * k))
    args["strides"] = strides
    auto = str(view.attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER") and k:
        pairs = [
            _same_pads(x.shape[-k + i], y.shape[-k + i], kernel[i], strides[i], dilations[i],
                       auto == "SAME_UPPER")
            for i in range(k)
        ]
        args["pads"] = [p[0] for p in pairs] + [p[1] for p in pairs]
    return args, ins, outs


def _gather(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    args["self"] = ins[0]
    return args, ins, outs


def _cumsum(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    axis = view.value(1)
    if axis is not None:
        args["axis"] = int(axis.reshape(-1)[0])
    return args, ins, outs


def _cast_like(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    return args, ins[:1], outs  # the second input only gives the dtype: it is not read


def _split_to_sequence(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    x = ins[0]
    return args, ins, (replace(x, weight=False),)


_SCHEMA_NAMES: dict[str, tuple[str, ...]] = {
    "QuantizeLinear": ("x", "y_scale", "y_zero_point"),
    "DequantizeLinear": ("x", "x_scale", "x_zero_point"),
    "DynamicQuantizeLinear": ("x",),
    "MatMulInteger": ("A", "B", "a_zero_point", "b_zero_point"),
    "ConvInteger": ("x", "w", "x_zero_point", "w_zero_point"),
    "QLinearMatMul": ("a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point",
                      "y_scale", "y_zero_point"),
    "QLinearConv": ("x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale",
                    "y_zero_point", "B"),
    "com.microsoft.QGemm": ("A", "a_scale", "a_zero_point", "B", "b_scale", "b_zero_point", "C",
                            "y_scale", "y_zero_point"),
}


def _named(view: NodeView, args: dict, ins: tuple, outs: tuple) -> Adapted:
    for name, t in zip(_SCHEMA_NAMES[view.op], view.inputs):
        args[name] = t
    return args, ins, outs


ADAPTERS: dict[str, Callable[[NodeView, dict, tuple, tuple], Adapted]] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Gemm": _gemm,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "Gather": _gather,
    "GatherElements": _gather,
    "GatherND": _gather,
    "Slice": _gather,
    "CumSum": _cumsum,
    "CastLike": _cast_like,
    "SplitToSequence": _split_to_sequence,
    **{op: _named for op in _SCHEMA_NAMES},
}


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded; tensors and graphs left out)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        t = a.type
        if t == 1:
            out[a.name] = a.f
        elif t == 2:
            out[a.name] = int(a.i)
        elif t == 3:
            out[a.name] = a.s.decode("utf-8", "replace")
        elif t == 6:
            out[a.name] = list(a.floats)
        elif t == 7:
            out[a.name] = [int(v) for v in a.ints]
        elif t == 8:
            out[a.name] = [s.decode("utf-8", "replace") for s in a.strings]
    return out


__all__ = ["ADAPTERS", "NodeView", "adapt", "attributes"]
