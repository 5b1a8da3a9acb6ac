"""Binding what the user gave (shapes, named shapes, symbolic dimension values, a batch size)
to the inputs of an ONNX graph.

Positional inputs map to the graph's inputs in order (initializers listed as inputs by old
exporters are skipped); keyword inputs by name; ``dims`` set symbolic dimensions by name
wherever they occur; ``batch`` sets the first dimension of every input. A fixed dimension of
the graph can never be changed (the graph was exported for it), only confirmed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from modelmeter.errors import InputError
from modelmeter.frontends.onnx.load import KNOWN_TYPES, MAX_TENSOR_ELEMENTS, dtype_name
from modelmeter.shapes import parse_shape
from modelmeter.units import canonical_dtype

Dim = int | str | None  # a value, a symbol (dim_param) or unknown


def _given(value: Any, where: str) -> tuple[tuple[int, ...], str | None]:
    """A user input as (shape, dtype or None): a shape string, a tuple of ints, or anything
    with ``shape`` (and ``dtype``), such as an array or a tensor (only its shape is used)."""
    if isinstance(value, str):
        return parse_shape(value)
    if isinstance(value, (tuple, list)) and all(isinstance(d, int) for d in value):
        return tuple(value), None
    shape = getattr(value, "shape", None)
    if shape is not None:
        dt = getattr(value, "dtype", None)
        try:
            dtype = canonical_dtype(str(dt)) if dt is not None else None
        except ValueError:
            dtype = None
        return tuple(int(d) for d in shape), dtype
    raise InputError(
        f"cannot use {type(value).__name__} as {where}; give a shape such as 1x3x224x224"
    )


@dataclass
class GraphInput:
    name: str
    dtype: str
    dims: list[Dim] | None  # None: the graph gives no shape at all


@dataclass
class Binding:
    """The graph inputs with every dimension the user set, and the symbol values used."""

    inputs: list[GraphInput]
    symbols: dict[str, int] = field(default_factory=dict)
    changed: bool = False  # some dimension was set (exported shapes of values are stale)


def graph_inputs(graph: Any) -> list[GraphInput]:
    """The real inputs of a graph (not initializers), with their dims."""
    inits = {t.name for t in graph.initializer}
    out = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and int(tt.elem_type) not in KNOWN_TYPES:
            raise InputError(
                f"graph input {vi.name!r} has an unknown element type {tt.elem_type} "
                "(invalid model)"
            )
        dims: list[Dim] | None = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    if d.dim_value < 0:
                        raise InputError(
                            f"graph input {vi.name!r} has a negative dimension {d.dim_value} "
                            "(invalid model)"
                        )
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
        out.append(GraphInput(vi.name, dtype_name(tt.elem_type), dims))
    return out


def _show(dims: list[Dim] | None) -> str:
    if dims is None:
        return "unknown shape"
    return "x".join(str(d) if d is not None else "?" for d in dims) or "scalar"


def bind(
    graph: Any,
    inputs: Any,
    kwargs: dict[str, Any] | None,
    dims: dict[str, int] | None,
    batch: int | None,
) -> Binding:
    """Set the graph inputs' dimensions from the user's inputs, dims and batch."""
    ins = graph_inputs(graph)
    by_name = {gi.name: gi for gi in ins}
    given: dict[str, tuple[tuple[int, ...], str | None]] = {}
    positional = _positional(inputs)
    if len(positional) > len(ins):
        raise InputError(
            f"{len(positional)} inputs given but the graph has {len(ins)}: "
            f"{', '.join(gi.name for gi in ins) or 'none'}"
        )
    for gi, value in zip(ins, positional):
        given[gi.name] = _given(value, f"input {gi.name!r}")
    for name, value in (kwargs or {}).items():
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(
                f"the graph has no input {name!r}{hint} (inputs: {', '.join(by_name) or 'none'})"
            )
        if name in given:
            raise InputError(f"input {name!r} is given both by position and by name")
        given[name] = _given(value, f"input {name!r}")

    binding = Binding(ins)
    symbols = binding.symbols

    def set_symbol(sym: str, value: int, source: str) -> None:
        old = symbols.get(sym)
        if old is not None and old != value:
            raise InputError(
                f"dimension {sym!r} is {old} by one setting but {value} by {source}"
            )
        symbols[sym] = value

    for name, (shape, dt) in given.items():
        gi = by_name[name]
        if dt is not None and gi.dtype != "unknown" and dt != gi.dtype:
            raise InputError(f"input {name!r} is {gi.dtype} in the graph, not {dt}")
        if gi.dims is not None and len(gi.dims) != len(shape):
            raise InputError(
                f"input {name!r} has shape {_show(gi.dims)} in the graph; "
                f"{'x'.join(map(str, shape)) or 'scalar'} has a different rank"
            )
        if gi.dims is None:
            gi.dims = list(shape)
            binding.changed = True
            continue
        for i, (d, v) in enumerate(zip(gi.dims, shape)):
            if isinstance(d, int):
                if d != v:
                    raise InputError(
                        f"input {name!r} is {_show(gi.dims)} in the graph (fixed at export); "
                        f"cannot analyse it as {'x'.join(map(str, shape))}"
                    )
            elif isinstance(d, str):
                set_symbol(d, v, f"input {name!r}")
            else:
                gi.dims[i] = v
                binding.changed = True

    known = {d for gi in ins for d in (gi.dims or []) if isinstance(d, str)}
    for sym, value in (dims or {}).items():
        if sym not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InputError(
                f"the model has no symbolic dimension {sym!r} (its symbolic dimensions: {names})"
            )
        set_symbol(sym, int(value), f"dims {sym}={value}")

    if batch is not None:
        for gi in ins:
            if not gi.dims:
                continue
            d = gi.dims[0]
            if isinstance(d, int):
                if d != batch:
                    raise InputError(
                        f"input {gi.name!r} has a fixed first dimension {d} in the graph; "
                        f"cannot set the batch to {batch} (export the model with a dynamic batch)"
                    )
            elif isinstance(d, str):
                set_symbol(d, batch, f"batch={batch}")
            else:
                gi.dims[0] = batch
                binding.changed = True

    for gi in ins:
        if gi.dims is not None:
            for i, d in enumerate(gi.dims):
                if isinstance(d, str) and d in symbols:
                    gi.dims[i] = symbols[d]
                    binding.changed = True
            numel = 1
            for d in gi.dims:
                if isinstance(d, int) and not 0 <= d <= MAX_TENSOR_ELEMENTS:
                    raise InputError(f"input {gi.name!r}: dimension {d} is out of range")
                numel *= d if isinstance(d, int) else 1
            if numel > MAX_TENSOR_ELEMENTS:
                raise InputError(
                    f"input {gi.name!r} would be {_show(gi.dims)}: {numel} elements, more than "
                    "an ONNX tensor can hold (2^63 - 1)"
                )
    return binding


def _positional(inputs: Any) -> list[Any]:
    if inputs is None:
        return []
    if isinstance(inputs, str) or hasattr(inputs, "shape"):
        return [inputs]
    if isinstance(inputs, tuple) and inputs and all(isinstance(d, int) for d in inputs):
        return [inputs]  # a bare shape
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    return [inputs]


def apply(graph: Any, binding: Binding) -> None:
    """Write the bound dimensions into ``graph``'s input declarations."""
    by_name = {gi.name: gi for gi in binding.inputs}
    for vi in graph.input:
        gi = by_name.get(vi.name)
        if gi is None or gi.dims is None:
            continue
        tt = vi.type.tensor_type
        shape = tt.shape
        while len(shape.dim) < len(gi.dims):
            shape.dim.add()
        for d, value in zip(shape.dim, gi.dims):
            if isinstance(value, int):
                d.dim_value = value
            elif isinstance(value, str):
                d.dim_param = value


__all__ = ["Binding", "GraphInput", "apply", "bind", "graph_inputs", "parse_shape"]
