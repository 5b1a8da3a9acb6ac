"""Reading an ONNX model without holding its weights.

The graph is parsed with ``load_external_data=False``: tensors stored in external files are
never read, their sizes come from ``dims`` and ``data_type``. Each external reference is
checked (inside the model's folder, the file present and long enough) before anything is
counted, so a broken model fails with one clear message. Small integer tensors (shape
constants, axes) stored externally are the only ones read, because shape inference needs their
values.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from modelmeter.errors import InputError, first_line, require

# ONNX TensorProto data types -> modelmeter's dtype names (units.DTYPE_BYTES).
DTYPES: dict[int, str] = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8_e4m3fn",
    18: "float8_e4m3fnuz",
    19: "float8_e5m2",
    20: "float8_e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4_e2m1fn",
    24: "float8_e8m0fnu",
    25: "uint2",
    26: "int2",
    27: "float6_e2m3fn",
    28: "float6_e3m2fn",
}
# Bits per element of each data type, for the size of external data.
_BITS = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64,
    14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8,
    25: 2, 26: 2, 27: 6, 28: 6,
}
# Every data type this ONNX version defines (0, UNDEFINED, is none of them).
KNOWN_TYPES = frozenset(DTYPES) | frozenset(_BITS)
# External tensors small enough to read for shape inference (integer constants only).
SMALL_EXTERNAL_BYTES = 1 << 16
_INTEGER_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}


def dtype_name(data_type: int) -> str:
    return DTYPES.get(int(data_type), "unknown")


def tensor_nbytes(data_type: int, dims: Any) -> int:
    """Bytes a tensor of this type and shape holds (sub-byte types packed, rounded up)."""
    return math.ceil(math.prod(int(d) for d in dims) * _BITS.get(int(data_type), 32) / 8)


@dataclass
class Loaded:
    """A parsed model: the proto (external data not loaded), its folder (None for an
    in-memory proto) and the label reports show."""

    model: Any
    folder: str | None
    label: str
    inlined: int = 0  # calls of model-local functions replaced by their bodies


def onnx_module() -> Any:
    return require("onnx", "onnx", "analysing ONNX models")


def load_model(model: Any) -> Loaded:
    """Parse ``model`` (a path to an ``.onnx`` file or an ``onnx.ModelProto``) and check its
    external data. Raises InputError with one clear line on anything unreadable."""
    onnx = onnx_module()
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            what = "a directory" if os.path.isdir(path) else "no such file"
            raise InputError(f"cannot read ONNX model {path!r}: {what}")
        try:
            proto = onnx.load(path, load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf raises several types on bad bytes
            raise InputError(
                f"{path!r} is not a readable ONNX model (corrupt or truncated file?): "
                f"{type(e).__name__}: {first_line(e, '')}"
            ) from None
        folder = os.path.dirname(os.path.abspath(path))
        label = os.path.basename(path)
        strip_data(proto.graph)  # the weights' bytes are not needed: free them now
    elif isinstance(model, onnx.ModelProto):
        folder = None
        label = model.graph.name or "onnx model"
        proto = stripped_copy(model)  # the user's proto is never modified
    else:
        raise InputError(f"cannot analyse {type(model).__name__} as an ONNX model")
    _check_structure(proto, label)
    inlined = 0
    if proto.functions:
        proto, inlined = _inline_functions(proto, label)
    if folder is not None:
        check_external_data(proto, folder)
    elif any(_is_external(t) for t in _all_tensors(proto)):
        raise InputError(
            "this in-memory ONNX model refers to external data files; pass the path of the "
            ".onnx file instead so that they can be found"
        )
    return Loaded(proto, folder, label, inlined)


def _inline_functions(proto: Any, label: str) -> tuple[Any, int]:
    """Replace calls of the model's local functions (``export_modules_as_functions``, ONNX
    Script functions) by their bodies, so that every op is counted by its own formula.
    Returns the model and the number of calls inlined."""
    from onnx import inliner

    local = {(f.domain, f.name) for f in proto.functions}
    calls = sum(
        (n.domain, n.op_type) in local for g in subgraphs(proto.graph) for n in g.node
    )
    try:
        out = inliner.inline_local_functions(proto)
    except Exception as e:  # noqa: BLE001 - the C++ inliner raises several types
        raise InputError(
            f"{label!r}: cannot inline the model's local functions: {first_line(e, '')}"
        ) from None
    return out, calls


_DATA_FIELDS = (
    "raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data",
    "uint64_data",
)


def _is_large(t: Any) -> bool:
    if _is_external(t):
        return False
    return tensor_nbytes(t.data_type, t.dims) > SMALL_EXTERNAL_BYTES


def strip_data(graph: Any) -> None:
    """Drop the values of large initializers (their name, type and dims stay)."""
    for t in graph.initializer:
        if _is_large(t):
            for f in _DATA_FIELDS:
                t.ClearField(f)


def stripped_copy(model: Any) -> Any:
    """A copy of ``model`` without the values of its large initializers (the large values
    are never copied)."""
    onnx = onnx_module()
    copy = onnx.ModelProto()
    _copy_fields(model, copy, skip="graph")
    _copy_fields(model.graph, copy.graph, skip="initializer")
    for t in model.graph.initializer:
        if _is_large(t):
            light = copy.graph.initializer.add()
            light.name, light.data_type = t.name, t.data_type
            light.dims.extend(t.dims)
        else:
            copy.graph.initializer.add().CopyFrom(t)
    return copy


def _copy_fields(src: Any, dst: Any, skip: str) -> None:
    for field, value in src.ListFields():
        if field.name == skip:
            continue
        if hasattr(value, "ListFields"):  # a message
            getattr(dst, field.name).CopyFrom(value)
        elif isinstance(value, (str, bytes, int, float, bool)):
            setattr(dst, field.name, value)
        else:  # a repeated field
            getattr(dst, field.name).extend(value)



def _check_structure(proto: Any, label: str) -> None:
    graph = proto.graph
    if proto.ir_version <= 0 or (not graph.node and not graph.output):
        raise InputError(
            f"{label!r} is not an ONNX model (no IR version, nodes or outputs; "
            "corrupt or truncated file?)"
        )
    where = _bad_text(proto, "model")
    if where:
        raise InputError(
            f"{label!r} is not a readable ONNX model: {where} is not UTF-8 text "
            "(corrupt file?)"
        )
    for t in _all_tensors(proto):
        check_tensor(t, label)
    for g in subgraphs(proto.graph):
        _check_single_assignment(g, label)


# Largest element count (and dimension) a tensor can have: ONNX dims are int64.
MAX_TENSOR_ELEMENTS = (1 << 63) - 1


def check_tensor(t: Any, label: str) -> None:
    """A stored tensor must have a known data type and dims that a tensor can have."""
    name = t.name or "<unnamed>"
    if int(t.data_type) not in KNOWN_TYPES:
        raise InputError(
            f"{label!r}: tensor {name!r} has an unknown data type {t.data_type} "
            "(corrupt file, or an ONNX version newer than this one?)"
        )
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise InputError(f"{label!r}: tensor {name!r} has a negative dimension {dims}")
    if math.prod(dims) > MAX_TENSOR_ELEMENTS:
        raise InputError(
            f"{label!r}: tensor {name!r} has {math.prod(dims)} elements ({dims}), more than "
            "an ONNX tensor can hold (corrupt file?)"
        )


def _check_single_assignment(graph: Any, label: str) -> None:
    """Every value is written once: by a graph input, an initializer or one node."""
    writer: dict[str, str] = {t.name: "an initializer" for t in graph.initializer}
    for vi in graph.input:
        writer.setdefault(vi.name, "a graph input")
    for node in graph.node:
        who = f"node {node.name or node.op_type!r}"
        for out in node.output:
            if not out:
                continue
            if out in writer:
                raise InputError(
                    f"{label!r} is not a valid ONNX graph: value {out!r} is written by "
                    f"{writer[out]} and again by {who}"
                )
            writer[out] = who


def _bad_text(msg: Any, path: str) -> str | None:
    """The path of the first string field that is not valid UTF-8 (protobuf hands such a
    proto2 string over as bytes), or None. Numeric and bytes fields are not visited."""
    for field, value in msg.ListFields():
        if field.type == _TYPE_STRING:
            values = [value] if isinstance(value, (str, bytes)) else value
            if any(not isinstance(v, str) for v in values):
                return f"{path}.{field.name}"
        elif field.type == _TYPE_MESSAGE:
            if hasattr(value, "ListFields"):
                where = _bad_text(value, f"{path}.{field.name}")
                if where:
                    return where
            else:
                for i, item in enumerate(value):
                    where = _bad_text(item, f"{path}.{field.name}[{i}]")
                    if where:
                        return where
    return None


# protobuf's FieldDescriptor.TYPE_STRING and TYPE_MESSAGE
_TYPE_STRING, _TYPE_MESSAGE = 9, 11


def _is_external(t: Any) -> bool:
    return t.data_location == 1  # TensorProto.EXTERNAL


def _all_tensors(proto: Any) -> list[Any]:
    """Initializers and tensor attributes of every graph, subgraphs included."""
    return [t for t, _ in _tensor_sites(proto)]


def _sparse_parts(sparse: Any) -> list[Any]:
    return [sparse.values, sparse.indices]


def _tensor_sites(proto: Any) -> list[tuple[Any, bool]]:
    """Every stored tensor of every graph (sparse tensors' values and indices included), with
    True for a node attribute's tensor, False for an initializer."""
    out: list[tuple[Any, bool]] = []
    for g in subgraphs(proto.graph):
        out.extend((t, False) for t in g.initializer)
        out.extend((t, False) for s in g.sparse_initializer for t in _sparse_parts(s))
        for node in g.node:
            for a in node.attribute:
                tensors = [a.t] if a.HasField("t") else []
                tensors.extend(a.tensors)
                if a.HasField("sparse_tensor"):
                    tensors.extend(_sparse_parts(a.sparse_tensor))
                tensors.extend(t for s in a.sparse_tensors for t in _sparse_parts(s))
                out.extend((t, True) for t in tensors)
    return out


def external_info(t: Any) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _external_int(info: dict[str, str], key: str, name: str) -> int:
    text = info.get(key, "") or "0"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(
            f"tensor {name!r} has an invalid external data {key} {text!r} (corrupt file?)"
        )
    return value


def check_external_data(proto: Any, folder: str) -> None:
    """Every external tensor must lie in a file inside ``folder`` that holds its bytes.
    Small integer initializers and small attribute tensors (a Constant's or ConstantOfShape's
    ``value``) are read here, from that file, and become inline data: shape inference needs
    their values, and nothing later may read external data (it would resolve the location
    against the current directory). No other tensor is read."""
    real_folder = os.path.realpath(folder)
    sizes: dict[str, int] = {}
    for t, attribute in _tensor_sites(proto):
        if not _is_external(t):
            continue
        info = external_info(t)
        location = info.get("location", "")
        name = t.name or "<unnamed>"
        if not location:
            raise InputError(f"tensor {name!r} has external data without a location")
        if "\0" in location:
            raise InputError(f"tensor {name!r} has an invalid external data location {location!r}")
        path = os.path.realpath(os.path.join(real_folder, location))
        if os.path.isabs(location) or os.path.commonpath([path, real_folder]) != real_folder:
            raise InputError(
                f"refusing external data {location!r} of tensor {name!r}: it is outside the "
                "model's folder"
            )
        if path not in sizes:
            if not os.path.isfile(path):
                what = (
                    "a directory" if os.path.isdir(path)
                    else f"not in the model's folder {folder}"
                )
                raise InputError(
                    f"missing external data: tensor {name!r} is stored in {location!r}, which "
                    f"is {what}"
                )
            sizes[path] = os.path.getsize(path)
        offset = _external_int(info, "offset", name)
        length = _external_int(info, "length", name) or tensor_nbytes(t.data_type, t.dims)
        if offset + length > sizes[path]:
            raise InputError(
                f"missing external data: tensor {name!r} needs bytes {offset}..{offset + length} "
                f"of {location!r}, which has only {sizes[path]} (truncated file?)"
            )
        wanted = t.data_type in _INTEGER_TYPES or (attribute and t.data_type != 8)
        if wanted and length <= SMALL_EXTERNAL_BYTES:
            with open(path, "rb") as f:
                f.seek(offset)
                t.raw_data = f.read(length)
            t.data_location = 0
            del t.external_data[:]


def subgraphs(graph: Any) -> list[Any]:
    """``graph`` and every graph nested in its nodes' attributes."""
    out, stack = [], [graph]
    while stack:
        g = stack.pop()
        out.append(g)
        for node in g.node:
            for a in node.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
    return out
