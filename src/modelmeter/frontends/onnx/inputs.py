"""Binding an :class:`~modelmeter.inputs.InputRequest` (shapes, arrays, named inputs, symbolic
dimension values, a batch size) to the inputs of an ONNX graph.

Positional inputs map to the graph's inputs in order (initializers listed as inputs by old
exporters are skipped); keyword inputs by name; a shape without a dtype takes the graph's; of
an array only the shape (its first dimension set to the batch) and dtype are used; ``dims``
set symbolic dimensions by name wherever they occur; ``batch`` sets the first dimension of
every input, given or not. A fixed dimension of
the graph can never be changed (the graph was exported for it), only confirmed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelmeter.errors import InputError
from modelmeter.frontends.onnx.load import KNOWN_TYPES, MAX_TENSOR_ELEMENTS, dtype_name
from modelmeter.inputs import InputItem, InputRequest, NestedInput, ShapeInput, ValueInput
from modelmeter.units import canonical_dtype

Dim = int | str | None  # a value, a symbol (dim_param) or unknown


def _given(item: InputItem, batch: int | None, where: str) -> tuple[tuple[int, ...], str | None]:
    """A request's input as (shape, dtype or None): a shape (dtype None: the graph's), or a
    tensor or array given as a value, of which only the shape (with ``batch`` as its first
    dimension) and the dtype are used."""
    if isinstance(item, ShapeInput):
        return item.shape, item.dtype  # batched by the request already
    shape = item.shape if isinstance(item, ValueInput) else None
    if shape is None:
        what = (f"a {item.container.__name__}" if isinstance(item, NestedInput)
                else type(item.value).__name__)  # fmt: skip
        raise InputError(f"cannot use {what} as {where}; give a shape such as 1x3x224x224")
    if batch is not None and shape:
        shape = (batch, *shape[1:])
    dt = getattr(item.value, "dtype", None)
    try:
        dtype = canonical_dtype(str(dt)) if dt is not None else None
    except ValueError:
        dtype = None
    return shape, dtype


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

    def set_symbol(self, sym: str, value: int, source: str) -> None:
        """Give the symbolic dimension ``sym`` its value; InputError on a conflicting one."""
        old = self.symbols.get(sym)
        if old is not None and old != value:
            raise InputError(f"dimension {sym!r} is {old} by one setting but {value} by {source}")
        self.symbols[sym] = value


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


def bind(graph: Any, request: InputRequest) -> Binding:
    """Set the graph inputs' dimensions from the request's inputs, dims and batch."""
    binding = Binding(graph_inputs(graph))
    for name, (shape, dt) in _given_by_name(binding.inputs, request).items():
        _bind_given(binding, name, shape, dt)
    _bind_dims(binding, request.dims)
    if request.batch is not None:
        _bind_batch(binding, request.batch)
    _substitute(binding)
    return binding


def _given_by_name(
    ins: list[GraphInput], request: InputRequest
) -> dict[str, tuple[tuple[int, ...], str | None]]:
    """What the request gives each graph input: positional inputs in order, keyword inputs
    by name, as (shape, dtype or None)."""
    names = [gi.name for gi in ins]
    if len(request.args) > len(ins):
        raise InputError(
            f"{len(request.args)} inputs given but the graph has {len(ins)}: "
            f"{', '.join(names) or 'none'}"
        )
    given = {
        name: _given(item, request.batch, f"input {name!r}")
        for name, item in zip(names, request.args)
    }
    for name, item in request.kwargs.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError(
                f"the graph has no input {name!r}{hint} (inputs: {', '.join(names) or 'none'})"
            )
        if name in given:
            raise InputError(f"input {name!r} is given both by position and by name")
        given[name] = _given(item, request.batch, f"input {name!r}")
    return given


def _bind_given(binding: Binding, name: str, shape: tuple[int, ...], dt: str | None) -> None:
    """Check a given input against its graph declaration and set its unknown dimensions."""
    gi = next(gi for gi in binding.inputs if gi.name == name)
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
        return
    for i, (d, v) in enumerate(zip(gi.dims, shape)):
        if isinstance(d, int):
            if d != v:
                raise InputError(
                    f"input {name!r} is {_show(gi.dims)} in the graph (fixed at export); "
                    f"cannot analyse it as {'x'.join(map(str, shape))}"
                )
        elif isinstance(d, str):
            binding.set_symbol(d, v, f"input {name!r}")
        else:
            gi.dims[i] = v
            binding.changed = True


def _bind_dims(binding: Binding, dims: Mapping[str, int]) -> None:
    """The values of symbolic dimensions given by name."""
    known = {d for gi in binding.inputs for d in (gi.dims or []) if isinstance(d, str)}
    for sym, value in dims.items():
        if sym not in known:
            names = ", ".join(sorted(known)) or "none"
            raise InputError(
                f"the model has no symbolic dimension {sym!r} (its symbolic dimensions: {names})"
            )
        binding.set_symbol(sym, int(value), f"dims {sym}={value}")


def _bind_batch(binding: Binding, batch: int) -> None:
    """``batch`` as the first dimension of every graph input that has one."""
    for gi in binding.inputs:
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
            binding.set_symbol(d, batch, f"batch={batch}")
        else:
            gi.dims[0] = batch
            binding.changed = True


def _substitute(binding: Binding) -> None:
    """Replace every bound symbol by its value and check each input's size."""
    for gi in binding.inputs:
        if gi.dims is None:
            continue
        for i, d in enumerate(gi.dims):
            if isinstance(d, str) and d in binding.symbols:
                gi.dims[i] = binding.symbols[d]
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


__all__ = ["Binding", "GraphInput", "apply", "bind", "graph_inputs"]
