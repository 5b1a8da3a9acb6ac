"""``torch._foreach_*`` ops: one op over lists of tensors, as the optimizers' foreach variants
and gradient clipping run them.

``_foreach_X(self, ...)`` costs what ``X`` costs on each element of the lists, summed: the
per-tensor formula (``add``, ``mul``, ``lerp``, ``addcdiv``, ``sqrt`` ...) is applied to the
i-th tensor of every list argument (and the i-th scalar of a scalar list), so a foreach op
and the for-loop over its elements count the same FLOPs and bytes. Bytes per element follow
the unfused rule (each distinct input read once, the output written once); an in-place
variant (``_foreach_add_``) returns nothing and writes its ``self`` tensors.

A scalar list (``scalars``) gives each element its own scalar; for ``addcmul``/``addcdiv``
it is the ``value`` that scales the product (3 FLOPs per element when it is not 1).
"""

from __future__ import annotations

from modelmeter.registry import (
    Formula,
    OpCall,
    TensorMeta,
    Work,
    ZeroCost,
    lookup,
    register_op,
    unfused_bytes,
)

# The per-tensor ops the foreach family has (torch/_C/_VariableFunctions: _foreach_*).
_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "clamp_min", "clamp_max", "pow",
           "lerp", "addcmul", "addcdiv", "copy")  # fmt: skip
_UNARY = ("sqrt", "rsqrt", "exp", "expm1", "log", "log1p", "log2", "log10", "neg", "abs",
          "reciprocal", "sign", "sigmoid", "tanh", "sin", "cos", "erf", "floor", "ceil",
          "round", "trunc", "frac", "zero")  # fmt: skip
_TARGETS = [f"_foreach_{n}{s}" for n in (*_BINARY, *_UNARY) for s in ("", "_")]
_TARGETS = [t for t in _TARGETS if t not in ("_foreach_copy", "_foreach_zero")]  # no such ops
_ALIASES = {"norm": "linalg_vector_norm"}


def _base(op: str) -> tuple[str, bool]:
    """(the per-tensor op, in place) of a foreach target: ``_foreach_add_`` -> (add_, True)."""
    name = op.removeprefix("_foreach_")
    inplace = name.endswith("_")
    stem = name.rstrip("_")
    return _ALIASES.get(stem, stem) + ("_" if inplace else ""), inplace


def _element_call(call: OpCall, op: str, i: int, n: int, inplace: bool) -> OpCall:
    """The i-th element's call: every list argument of length n indexed."""
    args: dict = {}
    inputs: list[TensorMeta] = []
    for key, value in call.args.items():
        if isinstance(value, (list, tuple)) and len(value) == n:
            value = value[i]
        args[key] = value
        if isinstance(value, TensorMeta):
            inputs.append(value)
    if "scalars" in args:  # addcmul/addcdiv: the i-th scale; a tensor of scales is read whole
        scale = args["scalars"]
        args["value"] = 2 if isinstance(scale, TensorMeta) else scale
    self_ = args.get("self")
    if inplace and isinstance(self_, TensorMeta):
        outputs: tuple[TensorMeta, ...] = (self_,)
    else:
        outputs = (call.outputs[i],) if i < len(call.outputs) else ()
    return OpCall(op, args, tuple(inputs), outputs, call.convention)


@register_op("foreach", family="elementwise", aten=[*_TARGETS, "_foreach_norm"])
def foreach(call: OpCall) -> Work:
    """``_foreach_X``: the formula of ``X`` on each element of the lists, summed (FLOPs, MACs
    and bytes); in-place variants write their ``self`` tensors."""
    op, inplace = _base(call.op)
    entry = lookup("aten", op) or lookup("aten", op.rstrip("_"))  # maximum_ is maximum
    items = call.args.get("self") or ()
    n = len(items)
    macs = flops = read = written = weight = 0
    for i in range(n):
        el = _element_call(call, op, i, n, inplace)
        r, w, wt = unfused_bytes(el.inputs, el.outputs)
        if isinstance(entry, Formula):
            work = entry(el)
            macs += work.macs
            flops += work.flops
            r = r if work.bytes_read is None else work.bytes_read
            w = w if work.bytes_written is None else work.bytes_written
            wt = wt if work.weight_bytes is None else work.weight_bytes
        elif not isinstance(entry, ZeroCost):
            raise ValueError(f"{call.op}: no formula for {op}")
        read, written, weight = read + r, written + w, weight + wt
    return Work(macs=macs, flops=flops, bytes_read=read, bytes_written=written,
                weight_bytes=weight)  # fmt: skip
