"""Shapes of every value: ONNX shape inference, helped by evaluating small constant subgraphs.

After the user's dimensions are written into the graph inputs, ``onnx.shape_inference`` (with
data propagation) gives most shapes. Where it leaves a node's outputs unknown -- typically a
Reshape, Expand or Pad whose shape argument is computed by Shape/Gather/Concat/Unsqueeze from
known shapes -- that node is inferred again, in graph order, by ONNX's per-node inference
given the *values* of its small constant inputs. Those values are computed here: Shape/Size
of a known shape, initializers and Constant nodes, then any deterministic standard op on them,
evaluated by ONNX's reference implementation (:mod:`.constants`). Only tensors of at most
``MAX_ELEMENTS`` elements are evaluated; weights never are. An output that is itself such a
constant takes the shape of its value.
"""

from __future__ import annotations

from typing import Any

from modelmeter.errors import InputError
from modelmeter.frontends.onnx.constants import (
    CONTROL_FLOW,
    Constants,
    ShapeOnly,
    constant_attr,
    elem_of,
)
from modelmeter.frontends.onnx.contrib import SHAPES as CONTRIB_SHAPES
from modelmeter.frontends.onnx.load import onnx_module, subgraphs

Dims = tuple[int | str | None, ...]


def _dims(tt: Any) -> Dims | None:
    if not tt.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


class ValueTypes:
    """Type and shape of every value by name (all graphs together; names are unique)."""

    def __init__(self) -> None:
        self.dims: dict[str, Dims | None] = {}
        self.elem: dict[str, int] = {}
        self.sequence: set[str] = set()

    def add_info(self, vi: Any) -> None:
        t = vi.type
        if t.HasField("tensor_type"):
            self.elem[vi.name] = t.tensor_type.elem_type
            self.dims[vi.name] = _dims(t.tensor_type)
        elif t.HasField("sequence_type"):
            self.sequence.add(vi.name)
            inner = t.sequence_type.elem_type
            if inner.HasField("tensor_type"):
                self.elem[vi.name] = inner.tensor_type.elem_type
                self.dims[vi.name] = _dims(inner.tensor_type)
        elif t.HasField("optional_type"):
            inner = t.optional_type.elem_type
            if inner.HasField("tensor_type"):
                self.elem[vi.name] = inner.tensor_type.elem_type
                self.dims[vi.name] = _dims(inner.tensor_type)

    def complete(self, name: str) -> bool:
        d = self.dims.get(name)
        return d is not None and all(isinstance(x, int) for x in d)

    @classmethod
    def of(cls, model: Any) -> ValueTypes:
        vt = cls()
        for g in subgraphs(model.graph):
            for t in g.initializer:
                vt.elem[t.name] = t.data_type
                vt.dims[t.name] = tuple(int(d) for d in t.dims)
            for vi in (*g.input, *g.value_info, *g.output):
                # an inferred shape is not replaced by a declaration without one
                if vi.name in vt.dims and vt.dims[vi.name] is not None and not _has_shape(vi):
                    continue
                vt.add_info(vi)
            for node in g.node:
                if node.op_type == "Constant" and node.output:
                    arr = constant_attr(node)
                    if arr is not None:
                        elem = arr.elem if isinstance(arr, ShapeOnly) else elem_of(arr)
                        vt.elem.setdefault(node.output[0], elem)
                        vt.dims[node.output[0]] = tuple(arr.shape)
        return vt


def _has_shape(vi: Any) -> bool:
    t = vi.type
    return t.HasField("tensor_type") and t.tensor_type.HasField("shape")


# ONNX's data propagation computes the values of a Range in C++, element by element: a
# Range of 10^8 elements feeding a shape computation runs for minutes. Past this many
# elements, shape inference runs without data propagation (shapes computed from such values
# stay unknown and are reported as such).
MAX_PROPAGATED_RANGE = 1 << 20


def _scalar(graph: Any, name: str) -> float | None:
    """The value of ``name`` where a Constant node or an initializer of ``graph`` holds one
    scalar, else None."""
    onnx = onnx_module()
    for t in graph.initializer:
        if t.name == name:
            arr = onnx.numpy_helper.to_array(t) if not t.data_location else None
            return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            for a in node.attribute:
                if a.name == "value" and a.t.data_location == 0:
                    arr = onnx.numpy_helper.to_array(a.t)
                    return float(arr.reshape(-1)[0]) if arr.size == 1 else None
    return None


def huge_range(model: Any) -> bool:
    """Whether a Range of constant bounds would make more than MAX_PROPAGATED_RANGE values."""
    for g in subgraphs(model.graph):
        for node in g.node:
            if node.op_type != "Range" or len(node.input) < 3:
                continue
            start, limit, delta = (_scalar(g, x) for x in node.input[:3])
            if None in (start, limit, delta) or not delta:
                continue
            count = (limit - start) / delta  # type: ignore[operator]
            if count == count and count > MAX_PROPAGATED_RANGE:  # not NaN, and too many
                return True
    return False


def infer(model: Any) -> Any:
    """ONNX shape inference (with data propagation unless :func:`huge_range`); InputError
    when the graph is invalid."""
    onnx = onnx_module()
    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=False, data_prop=not huge_range(model)
        )
    except Exception as e:  # noqa: BLE001 - InferenceError, ValidationError, RuntimeError
        text = str(e).strip().splitlines()
        raise InputError(
            f"ONNX shape inference failed (do the input shapes fit the model?): "
            f"{text[0][:300] if text else type(e).__name__}"
        ) from None


def diagnose(model: Any) -> str | None:
    """Why shape inference leaves shapes unknown: the first error of ONNX's strict inference
    (which the lenient run used for counting skips), or None."""
    onnx = onnx_module()
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                          data_prop=not huge_range(model))
    except Exception as e:  # noqa: BLE001 - InferenceError, ValidationError ...
        text = " ".join(str(e).split())
        return text[:300] or type(e).__name__
    return None


def clear_value_info(model: Any) -> None:
    """Forget exported shapes of values (stale once input dimensions change)."""
    for g in subgraphs(model.graph):
        del g.value_info[:]
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")


def resolve(model: Any) -> tuple[ValueTypes, Constants]:
    """Infer the shapes of ``model``; where inference leaves a node's outputs unknown, infer
    that node again, in graph order, with the values of its small constant inputs (and take
    the shape of an output that is itself a computable constant)."""
    onnx = onnx_module()
    inferred = infer(model)
    types = ValueTypes.of(inferred)
    consts = Constants(inferred, types)
    opsets = {o.domain or "": int(o.version) for o in inferred.opset_import}
    for node in inferred.graph.node:
        outs = [o for o in node.output if o]
        if all(types.complete(o) for o in outs) or node.op_type in CONTROL_FLOW:
            continue
        for name, dims in _infer_node(onnx, node, types, consts, opsets, inferred).items():
            if dims is not None and _more_known(dims, types.dims.get(name)):
                types.dims[name] = dims
        for o in outs:
            if not types.complete(o):
                value = consts.get(o)
                if value is not None:
                    types.dims[o] = tuple(int(d) for d in value.shape)
    return types, consts


def _more_known(new: Dims, old: Dims | None) -> bool:
    if old is None:
        return True
    known = sum(isinstance(d, int) for d in new)
    return len(new) == len(old) and known > sum(isinstance(d, int) for d in old)


def _type_proto(onnx: Any, types: ValueTypes, name: str) -> Any:
    tp = onnx.TypeProto()
    if name in types.sequence:
        tt = tp.sequence_type.elem_type.tensor_type
    else:
        tt = tp.tensor_type
    tt.elem_type = types.elem.get(name, 0)
    dims = types.dims.get(name)
    if dims is not None:
        shape = tt.shape
        shape.SetInParent()
        for d in dims:
            dim = shape.dim.add()
            if isinstance(d, int):
                dim.dim_value = d
            elif isinstance(d, str):
                dim.dim_param = d
    return tp


def _qgemm(node: Any, types: ValueTypes, infer: Any = None) -> dict[str, Dims | None]:
    """onnxruntime's QGemm: (M, K) x (K, N) with transA/transB, like Gemm."""
    attrs = {a.name: a.i for a in node.attribute}
    a, b = types.dims.get(node.input[0]), types.dims.get(node.input[3])
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return {}
    m = a[1] if attrs.get("transA", 0) else a[0]
    n = b[0] if attrs.get("transB", 0) else b[1]
    y_scale = len(node.input) > 7 and node.input[7]
    types.elem.setdefault(node.output[0], types.elem.get(node.input[0], 0) if y_scale else 1)
    return {node.output[0]: (m, n)}


# Shapes of the custom-domain ops that have a formula (ONNX's inference does not know them).
CUSTOM_SHAPES = {("com.microsoft", "QGemm"): _qgemm, **CONTRIB_SHAPES}


def _infer_node(
    onnx: Any, node: Any, types: ValueTypes, consts: Constants, opsets: dict[str, int],
    model: Any,
) -> dict[str, Dims | None]:
    """ONNX's shape inference of one node, given its inputs' types and constant values."""
    custom = CUSTOM_SHAPES.get((node.domain, node.op_type))
    if custom is not None:
        return custom(
            node, types, lambda std: _infer_node(onnx, std, types, consts, opsets, model)
        )
    domain = node.domain if node.domain != "ai.onnx" else ""
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(domain, 1), domain)
    except Exception:  # noqa: BLE001 - no schema (custom op)
        return {}
    input_types = {i: _type_proto(onnx, types, i) for i in node.input if i}
    input_data = {}
    for i in node.input:
        if i and i not in input_data:
            value = consts.get(i)
            if value is not None:
                try:
                    input_data[i] = onnx.numpy_helper.from_array(value, i)
                except Exception:  # noqa: BLE001 - a dtype numpy_helper cannot write
                    pass
    try:
        result = onnx.shape_inference.infer_node_outputs(
            schema, node, input_types, input_data, opset_imports=list(model.opset_import),
            ir_version=model.ir_version,
        )
    except Exception:  # noqa: BLE001 - inference of this node fails: leave it unknown
        return {}
    out: dict[str, Dims | None] = {}
    for name, tp in result.items():
        if tp.HasField("sequence_type") and tp.sequence_type.elem_type.HasField("tensor_type"):
            types.sequence.add(name)
            tp = tp.sequence_type.elem_type
        if tp.HasField("tensor_type"):
            out[name] = _dims(tp.tensor_type)
            if tp.tensor_type.elem_type and not types.elem.get(name):
                types.elem[name] = tp.tensor_type.elem_type
    return out


__all__ = [
    "Constants", "ValueTypes", "clear_value_info", "diagnose", "infer", "resolve", "subgraphs",
]
