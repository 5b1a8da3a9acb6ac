"""Structural checks of an ONNX model, once, when it is loaded (before its large tensors'
bytes are dropped): what ONNX's checker rejects and the walk would otherwise count as if it
were a valid graph. ``onnx.checker`` is not used: it reads the values of every tensor (slow on
large models) and rejects models that runtimes load (unknown custom domains).

Each problem is one :class:`InputError` line starting ``invalid ONNX model``.
"""

from __future__ import annotations

import math
from typing import Any

from modelmeter.errors import InputError

# data_type -> (the typed field that may hold its values, values per element); sub-byte and
# 8-bit float types pack several elements per int32 and are not checked here.
_FIELDS: dict[int, tuple[str, int]] = {
    1: ("float_data", 1), 2: ("int32_data", 1), 3: ("int32_data", 1), 4: ("int32_data", 1),
    5: ("int32_data", 1), 6: ("int32_data", 1), 7: ("int64_data", 1), 8: ("string_data", 1),
    9: ("int32_data", 1), 10: ("int32_data", 1), 11: ("double_data", 1),
    12: ("uint64_data", 1), 13: ("uint64_data", 1), 14: ("float_data", 2),
    15: ("double_data", 2), 16: ("int32_data", 1),
}
# raw_data of these types has a whole number of bytes per element
_RAW_CHECKED = (set(_FIELDS) - {8}) | {17, 18, 19, 20, 24}
_TYPED = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def check_model(proto: Any, label: str, nbytes: Any) -> None:
    """Raise InputError naming the first structural problem of ``proto``: opsets, tensors
    whose data does not fit their dims, and in every graph duplicate inputs, values read or
    output that nothing defines. ``nbytes(data_type, dims)`` gives a tensor's size."""
    _check_opsets(proto, label)
    _check_graph(proto.graph, label, "graph", [], nbytes)


def _fail(label: str, what: str) -> InputError:
    return InputError(f"invalid ONNX model {label!r}: {what}")


def _check_opsets(proto: Any, label: str) -> None:
    from onnx import defs

    newest = {"": defs.onnx_opset_version(), "ai.onnx.ml": 5}
    seen: set[str] = set()
    for op in proto.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        if domain in seen:
            raise _fail(label, f"opset domain {op.domain or 'ai.onnx'!r} is imported twice")
        seen.add(domain)
        top = newest.get(domain)
        if int(op.version) < 1 or (top is not None and int(op.version) > top):
            known = f" (this onnx knows versions 1 to {top})" if top is not None else ""
            raise _fail(
                label, f"opset {op.domain or 'ai.onnx'!r} version {op.version} is unknown{known}"
            )


def _check_tensor_data(t: Any, label: str, where: str, nbytes: Any) -> None:
    """A stored (not external) tensor holds exactly the data its dims and type declare."""
    if t.data_location == 1 or t.HasField("segment"):
        return
    name = t.name or "<unnamed>"
    dims = [int(d) for d in t.dims]
    numel = math.prod(dims)
    held = [f for f in _TYPED if len(getattr(t, f))]
    if t.raw_data:
        if int(t.data_type) not in _RAW_CHECKED:
            return
        need = nbytes(t.data_type, dims)
        if len(t.raw_data) != need or held:
            raise _fail(
                label,
                f"{where} {name!r} has {len(t.raw_data)} bytes of data, but its dims {dims} "
                f"and type need {need}",
            )
        return
    if not held:
        if numel:
            raise _fail(
                label,
                f"{where} {name!r} declares {numel} elements (dims {dims}) but holds no data "
                "(and no external data)",
            )
        return
    field, per = _FIELDS.get(int(t.data_type), (None, 0))
    if field is None:
        return
    count = len(getattr(t, field))
    if held != [field] or count != numel * per:
        raise _fail(
            label,
            f"{where} {name!r} holds {count} value(s) in {held[0]}, but its dims {dims} and "
            f"type need {numel * per} in {field}",
        )


def _check_graph(graph: Any, label: str, where: str, outer: list[set[str]], nbytes: Any) -> None:
    """Inputs named once; every value a node reads or the graph outputs is defined (by an
    input, an initializer, a node of this graph, or for a subgraph the graphs around it:
    ``outer``, the names each of them defines)."""
    names: set[str] = set()
    for vi in graph.input:
        if vi.name in names:
            raise _fail(label, f"{where} has two inputs named {vi.name!r}")
        names.add(vi.name)
    inits: set[str] = set()
    for t in graph.initializer:
        if t.name in inits:
            raise _fail(label, f"{where} has two initializers named {t.name!r}")
        inits.add(t.name)
        _check_tensor_data(t, label, "initializer", nbytes)
    defined = names | inits
    for node in graph.node:
        defined.update(o for o in node.output if o)
    for name in sorted(defined):  # names are unique across nested graphs (SSA)
        if any(name in s for s in outer):
            raise _fail(label, f"{where} defines {name!r} again, a name the graph around it "
                        "already defines")
    scopes = [defined, *outer]

    def known(name: str) -> bool:
        return any(name in s for s in scopes)

    for node in graph.node:
        who = f"node {node.name or node.op_type!r} of {where}"
        for name in node.input:
            if name and not known(name):
                raise _fail(
                    label, f"{who} reads {name!r}, which no node, input or initializer defines"
                )
        for a in node.attribute:
            if a.HasField("t"):
                _check_tensor_data(a.t, label, f"attribute {a.name!r} of {who}: tensor", nbytes)
            for t in a.tensors:
                _check_tensor_data(t, label, f"attribute {a.name!r} of {who}: tensor", nbytes)
            graphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
            for g in graphs:
                inner = f"the {a.name!r} graph of {who}"
                _check_graph(g, label, inner, scopes, nbytes)
    for vi in graph.output:
        if not known(vi.name):
            raise _fail(
                label,
                f"{where} output {vi.name!r} is written by no node, input or initializer",
            )


__all__ = ["check_model"]
