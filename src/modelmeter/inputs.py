"""What the user gave as a model's inputs, parsed once into a typed :class:`InputRequest`.

The command line (``--input``, ``--batch``, ``--dim``, ``--dtype``) and the Python API
(tensors, tuples of ints, shape strings, lists of those, ``batch=``, ``dims=``, ``dtype=``)
each build one request at the boundary (:meth:`InputRequest.from_cli`,
:meth:`InputRequest.from_api`); frontends consume it and never parse user text again.
Framework-free: a tensor or an array is kept as an opaque :class:`ValueInput`.

``batch`` applies to every input form: a shape's first dimension is replaced here; a given
tensor's first dimension is replaced by the frontend (on meta only its shape matters; a real
run repeats its rows cyclically, so indices and masks stay valid). An input with no first
dimension (a scalar, a plain Python value) is left as it is; a request whose inputs have no
first dimension at all refuses ``batch``.

A *list* argument is a batch of samples (torchvision's detection models take a list of
``3xHxW`` images): ``batch`` N makes it N items, the given ones repeated cyclically, each
item as given. A *tuple* argument holds several inputs (``(h, c)``): each item is batched,
as is each value of a *dict* argument (``{"image": "1x3x224x224", "text": "1x77:int64"}``).

At the top level, a tuple or a list of ints is one shape (``[1, 3, 224, 224]`` is one input,
as ``(1, 3, 224, 224)`` is); a list or tuple of shapes or tensors is several inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelmeter.errors import InputError
from modelmeter.shapes import MAX_DIM, check_shape, parse_shape
from modelmeter.units import ANALYSIS_DTYPES, canonical_dtype


@dataclass(frozen=True)
class ShapeInput:
    """An input given by its shape; ``dtype`` None: the frontend's default (float32 for
    PyTorch, the graph's own for ONNX)."""

    shape: tuple[int, ...]
    dtype: str | None = None

    def __post_init__(self) -> None:
        check_shape(self.shape)  # every way of making one is bounded (batch included)


@dataclass(frozen=True)
class ValueInput:
    """A tensor, an array or a plain Python value (``None``, ``bool``, ``int``, ``float``),
    kept as given: the frontend copies what it needs and never changes it."""

    value: Any

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape of a tensor or array; None for a plain value."""
        shape = getattr(self.value, "shape", None)
        return None if shape is None else tuple(int(d) for d in shape)


@dataclass(frozen=True)
class NestedInput:
    """A list, tuple or dict argument whose items are inputs (detection models take a list of
    images, many models a dict of tensors); ``container`` is ``list``, ``tuple`` or ``dict``
    (then ``keys`` names the items)."""

    items: tuple[InputItem, ...]
    container: type = list
    keys: tuple[str, ...] = ()


InputItem = ShapeInput | ValueInput | NestedInput


def _check_dtype(dtype: str | None) -> str | None:
    if dtype is None:
        return None
    try:
        name = canonical_dtype(dtype)
    except ValueError as e:
        raise InputError(str(e)) from None
    if name not in ANALYSIS_DTYPES:
        raise InputError(
            f"cannot analyse in {name}: give a floating or quantised integer dtype (fp32, bf16, "
            "fp16, fp8, int8, int4, ...); an input's own dtype goes in its shape (1x128:int64)"
        )
    return name


def _check_batch(batch: int | None) -> int | None:
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_DIM:
        raise InputError(
            f"batch must be a whole number >= 1 and at most {MAX_DIM} (got {batch!r})"
        )
    return batch


def _check_dims(dims: Mapping[str, int] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in (dims or {}).items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DIM:
            raise InputError(
                f"dimension {name!r} must be a whole number >= 1 and at most {MAX_DIM} "
                f"(got {value!r})"
            )
        out[str(name)] = value
    return out


def _has_first_dim(item: InputItem) -> bool:
    if isinstance(item, NestedInput):
        return any(_has_first_dim(i) for i in item.items)
    shape = item.shape
    return bool(shape)


def _batched(item: InputItem, batch: int) -> InputItem:
    if isinstance(item, ShapeInput) and item.shape:
        return ShapeInput((batch, *item.shape[1:]), item.dtype)
    if isinstance(item, NestedInput) and item.container is list:
        items = item.items  # a list of samples: N of them, repeated cyclically
        return NestedInput(tuple(items[i % len(items)] for i in range(batch)), list)
    if isinstance(item, NestedInput):
        return replace(item, items=tuple(_batched(i, batch) for i in item.items))
    return item  # a tensor: its frontend applies the batch (see the module doc)


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list))
        and bool(value)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in value)
    )


def item_from_api(value: Any) -> InputItem:
    """One input as the API accepts it: a shape string, a tuple/list of ints, a tensor or an
    array, a plain Python value, or a list/tuple of those (nested)."""
    if isinstance(value, (ShapeInput, ValueInput, NestedInput)):
        return value
    if isinstance(value, str):
        shape, dtype = parse_shape(value)
        return ShapeInput(shape, dtype)
    if _is_shape(value) or type(value).__name__ == "Size":
        return ShapeInput(check_shape(tuple(int(d) for d in value)))
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return ValueInput(value)
    if value is None or isinstance(value, (bool, int, float)):
        return ValueInput(value)
    if isinstance(value, (list, tuple)) and value:
        container = list if isinstance(value, list) else tuple
        return NestedInput(tuple(item_from_api(v) for v in value), container)
    if isinstance(value, Mapping) and value and all(isinstance(k, str) for k in value):
        return NestedInput(tuple(item_from_api(v) for v in value.values()), dict, tuple(value))
    raise InputError(
        f"cannot use {type(value).__name__} as a model input; give a tensor or a shape"
    )


def _dtype_of(item: InputItem, default: InputItem | None) -> InputItem:
    """``item``, a shape without a dtype taking ``default``'s dtype (a shape's or a tensor's)."""
    if not isinstance(item, ShapeInput) or item.dtype is not None or default is None:
        return item
    dtype = default.dtype if isinstance(default, ShapeInput) else None
    if isinstance(default, ValueInput) and hasattr(default.value, "dtype"):
        dtype = str(default.value.dtype).removeprefix("torch.")
    return item if dtype is None else replace(item, dtype=dtype)


def _positional_from_api(inputs: Any) -> tuple[InputItem, ...]:
    if inputs is None:
        return ()
    if _is_shape(inputs):
        return (item_from_api(inputs),)  # a bare shape: (1, 3, 224, 224) or [1, 3, 224, 224]
    if isinstance(inputs, (list, tuple)):
        return tuple(item_from_api(v) for v in inputs)
    if isinstance(inputs, Mapping):  # model(**d) or model(d)? say which
        raise InputError(
            "a dict of inputs is ambiguous: give keyword inputs as kwargs= (a factory: as the "
            "third item it returns), or one dict argument inside a tuple: (dict,)"
        )
    return (item_from_api(inputs),)


def split_named(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``["1x3x8x8", "mask=1x8:bool"]`` -> (["1x3x8x8"], {"mask": "1x8:bool"})."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for value in values:
        name, eq, shape = value.partition("=")
        if not eq:
            positional.append(value)
            continue
        name = name.strip()
        if not name or name[0].isdigit() or any(c.isspace() for c in name):
            raise InputError(
                f"malformed input {value!r}: NAME=SHAPE needs an input name "
                "(a keyword argument, or an ONNX graph input such as input.1)"
            )
        if name in named:
            raise InputError(f"input {name!r} is given twice")
        named[name] = shape.strip()
    return positional, named


def parse_dims(values: Sequence[str]) -> dict[str, int]:
    """``["batch=8", "seq=128"]`` -> {"batch": 8, "seq": 128}; InputError on anything else."""
    dims: dict[str, int] = {}
    for text in values:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise InputError(f"malformed --dim {text[:80]!r}: write NAME=N with N a positive integer")
        if len(value.lstrip("0")) > 12 or int(value) > MAX_DIM:
            raise InputError(f"--dim {text[:80]!r}: out of range (at most {MAX_DIM})")
        dims[name] = int(value)
    return dims


@dataclass(frozen=True)
class InputRequest:
    """A model's inputs as the user asked for them, checked and typed.

    ``args``/``kwargs``: the inputs (shapes already batched); ``batch``: the first dimension
    asked for (kept for the frontends: tensors, and ONNX graph inputs the user did not
    give); ``dims``: values of symbolic dimensions (ONNX); ``dtype``: weights and floating
    inputs analysed or run in this canonical dtype."""

    args: tuple[InputItem, ...] = ()
    kwargs: Mapping[str, InputItem] = field(default_factory=dict)
    batch: int | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    dtype: str | None = None

    @property
    def given(self) -> bool:
        """Whether any input was given (else a named model's defaults apply)."""
        return bool(self.args or self.kwargs)

    @classmethod
    def from_api(
        cls,
        inputs: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        batch: int | None = None,
        dims: Mapping[str, int] | None = None,
        dtype: str | None = None,
    ) -> InputRequest:
        """The request for what the Python API was given (``inputs`` may itself be a
        request, then the other arguments must be left out)."""
        if isinstance(inputs, InputRequest):
            if kwargs or batch is not None or dims or dtype is not None:
                raise InputError("give kwargs, batch, dims and dtype in the InputRequest itself")
            return inputs
        return cls(
            args=_positional_from_api(inputs),
            kwargs={str(k): item_from_api(v) for k, v in (kwargs or {}).items()},
            dims=_check_dims(dims),
            dtype=_check_dtype(dtype),
        ).with_batch(_check_batch(batch))

    @classmethod
    def from_cli(
        cls,
        inputs: Sequence[str] = (),
        *,
        batch: int | None = None,
        dims: Sequence[str] = (),
        dtype: str | None = None,
    ) -> InputRequest:
        """The request for ``--input`` texts (``SHAPE[:DTYPE]`` or ``NAME=SHAPE[:DTYPE]``),
        ``--batch``, ``--dim NAME=N`` and ``--dtype``; InputError on anything malformed."""
        positional, named = split_named(inputs)
        return cls(
            args=tuple(item_from_api(t) for t in positional),
            kwargs={k: item_from_api(t) for k, t in named.items()},
            dims=parse_dims(dims),
            dtype=_check_dtype(dtype),
        ).with_batch(_check_batch(batch))

    def with_batch(self, batch: int | None) -> InputRequest:
        """This request with ``batch`` applied to every shape-given input."""
        if batch is None:
            return self
        return replace(
            self,
            args=tuple(_batched(i, batch) for i in self.args),
            kwargs={k: _batched(i, batch) for k, i in self.kwargs.items()},
            batch=batch,
        )

    def with_defaults(
        self, inputs: Any, kwargs: Mapping[str, Any] | None, dtypes: Mapping[str, str] | None = None
    ) -> InputRequest:
        """A named model's default inputs where none were given (batch applied to them);
        where some were, a shape given without a dtype takes the dtype of the default input
        of the same name, or at the same place (positional defaults, then named ones: an
        ``hf:`` model's ``input_ids`` stay int64 when only ``1x1024`` is given), or the
        dtype ``dtypes`` names for an input the model takes but does not default."""
        args = _positional_from_api(inputs)
        named = {str(k): item_from_api(v) for k, v in (kwargs or {}).items()}
        if self.given:
            at = [*args, *named.values()]
            known = {k: ShapeInput((), d) for k, d in (dtypes or {}).items()} | named
            return replace(
                self,
                args=tuple(
                    _dtype_of(a, at[i] if i < len(at) else None) for i, a in enumerate(self.args)
                ),
                kwargs={k: _dtype_of(v, known.get(k)) for k, v in self.kwargs.items()},
            )
        defaults = replace(self, args=args, kwargs=named, batch=None)
        return defaults.with_batch(self.batch)

    def check_batch(self) -> None:
        """Refuse ``batch`` when no given input has a first dimension to set (PyTorch
        frontend; an ONNX graph's own inputs may take it)."""
        if self.batch is None or not self.given:
            return
        items = (*self.args, *self.kwargs.values())
        if not any(_has_first_dim(i) for i in items):
            raise InputError(
                f"batch {self.batch} given but no input has a first dimension to set"
            )


__all__ = [
    "InputItem",
    "InputRequest",
    "NestedInput",
    "ShapeInput",
    "ValueInput",
    "item_from_api",
    "parse_dims",
    "split_named",
]
