"""Values of small constant tensors: Constant nodes, initializers, Shape/Size of known
shapes and any deterministic standard op on them, evaluated by ONNX's reference
implementation on demand (tensors of at most ``MAX_ELEMENTS`` elements; weights never)."""

from __future__ import annotations

from typing import Any, Protocol

from modelmeter.errors import InputError
from modelmeter.frontends.onnx.load import (
    SMALL_EXTERNAL_BYTES,
    onnx_module,
    subgraphs,
    tensor_nbytes,
)

Dims = tuple[int | str | None, ...]
MAX_ELEMENTS = 1 << 14
NONDETERMINISTIC = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
    "Multinomial",
}
CONTROL_FLOW = {"If", "Loop", "Scan"}


class KnownDims(Protocol):
    """The shapes known so far, by value name (a :class:`.shapes.ValueTypes`)."""

    dims: dict[str, Dims | None]


def elem_of(arr: Any) -> int:
    helper = onnx_module().helper
    try:
        return int(helper.np_dtype_to_tensor_dtype(arr.dtype))
    except (KeyError, TypeError, ValueError):
        return 0


def constant_attr(node: Any) -> Any:
    """The value of a Constant node as a numpy array (None for sparse or string values)."""
    onnx = onnx_module()
    import numpy as np

    for a in node.attribute:
        if a.name == "value":
            large = tensor_nbytes(a.t.data_type, a.t.dims) > SMALL_EXTERNAL_BYTES
            if large or a.t.data_location == 1:  # or stored in a file that was not read
                return _shape_only(a.t)
            try:
                return onnx.numpy_helper.to_array(a.t)
            except Exception as e:  # noqa: BLE001 - data that does not fit its type and dims
                text = str(e).strip().splitlines()
                raise InputError(
                    f"Constant node {node.name or list(node.output)!r} holds an unreadable tensor "
                    f"(corrupt file?): {text[0][:200] if text else type(e).__name__}"
                ) from None
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    return None


def _external_attribute(node: Any) -> bool:
    """Whether a tensor attribute of ``node`` still refers to an external file (a large one
    that loading did not read): the reference implementation would read it relative to the
    current directory, so such a node is never evaluated."""
    return any(
        t.data_location == 1
        for a in node.attribute
        for t in ([a.t] if a.HasField("t") else []) + list(a.tensors)
    )


class ShapeOnly:
    """Stands in for a large constant's array: its shape and dtype, no values."""

    def __init__(self, shape: tuple[int, ...], elem: int) -> None:
        self.shape = shape
        self.elem = elem
        self.size = 1
        for d in shape:
            self.size *= d


def _shape_only(t: Any) -> Any:
    return ShapeOnly(tuple(int(d) for d in t.dims), int(t.data_type))


class Constants:
    """Values of small constant tensors, computed on demand and remembered."""

    def __init__(self, model: Any, types: KnownDims) -> None:
        self.opsets = {o.domain or "": int(o.version) for o in model.opset_import}
        self.types = types
        self.producer: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.failed: set[str] = set()
        self.nodata: set[str] = set()  # initializers whose values were not kept
        self._evaluators: dict[int, Any] = {}
        onnx = onnx_module()
        for g in subgraphs(model.graph):
            for node in g.node:
                for out in node.output:
                    if out:
                        self.producer[out] = node
            for t in g.initializer:
                small = tensor_nbytes(t.data_type, t.dims) <= SMALL_EXTERNAL_BYTES
                if t.data_location != 1 and small:
                    try:
                        self.values[t.name] = onnx.numpy_helper.to_array(t)
                    except Exception:  # noqa: BLE001 - a tensor without data
                        self.nodata.add(t.name)
                else:
                    self.nodata.add(t.name)
        self.candidates = self._candidates(model)

    def _candidates(self, model: Any) -> set[str]:
        """Values that may be constants: initializers with their values, Constant nodes,
        Shape/Size, and deterministic standard ops on candidates only. Evaluation never
        follows anything else (so it never walks back through the activations)."""
        cands = set(self.values)
        for g in subgraphs(model.graph):
            cands.update(t.name for t in g.initializer if t.name not in self.nodata)
            for node in g.node:
                op = node.op_type
                if node.domain not in ("", "ai.onnx") or op in NONDETERMINISTIC:
                    continue
                if op in CONTROL_FLOW:
                    continue
                if op in ("Constant", "Shape", "Size") or all(
                    i in cands for i in node.input if i
                ):
                    cands.update(o for o in node.output if o)
        return cands

    def get(self, name: str) -> Any:
        """The value of ``name``, or None when it is not a small computable constant."""
        if name in self.values:
            return self.values[name]
        if not name or name not in self.candidates or name in self.failed:
            return None
        node = self.producer.get(name)
        if node is None:
            self.failed.add(name)
            return None
        self.failed.add(name)  # guards against cycles; cleared on success
        try:
            outs = self._evaluate(node)
        except Exception:  # noqa: BLE001 - any op the reference implementation rejects
            outs = None
        if outs is None:
            return None
        for out, value in zip(node.output, outs):
            if out and getattr(value, "size", MAX_ELEMENTS + 1) <= MAX_ELEMENTS:
                self.values[out] = value
                self.failed.discard(out)
        return self.values.get(name)

    def _evaluate(self, node: Any) -> list[Any] | None:
        import numpy as np

        if node.domain not in ("", "ai.onnx"):
            return None
        op = node.op_type
        if op == "Constant":
            arr = constant_attr(node)
            return None if arr is None or isinstance(arr, ShapeOnly) else [arr]
        if op in ("Shape", "Size"):
            dims = self.types.dims.get(node.input[0])
            if dims is None or not all(isinstance(d, int) for d in dims):
                return None
            if op == "Size":
                return [np.array(int(np.prod(dims)), dtype=np.int64)]
            start, end = 0, len(dims)
            for a in node.attribute:
                if a.name == "start":
                    start = a.i
                elif a.name == "end":
                    end = a.i
            return [np.array(list(dims)[slice(start, end)], dtype=np.int64)]
        if op in NONDETERMINISTIC or op in CONTROL_FLOW or _external_attribute(node):
            return None
        feeds = {}
        for inp in node.input:
            if not inp:
                continue
            value = self.get(inp)
            if value is None:
                return None
            feeds[inp] = value
        evaluator = self._evaluator(node)
        return list(evaluator.run(None, feeds))

    def _evaluator(self, node: Any) -> Any:
        from onnx.reference import ReferenceEvaluator

        key = id(node)
        ev = self._evaluators.get(key)
        if ev is None:
            ev = self._evaluators[key] = ReferenceEvaluator(node, opsets=self.opsets)
        return ev


__all__ = [
    "CONTROL_FLOW",
    "MAX_ELEMENTS",
    "NONDETERMINISTIC",
    "Constants",
    "ShapeOnly",
    "constant_attr",
    "elem_of",
]
