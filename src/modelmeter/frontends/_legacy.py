"""Temporary glue (removed at the merge): an :class:`~modelmeter.inputs.InputRequest` back in
the forms ``modelmeter.api.analyze`` and ``InputSpecs.from_user`` still take, until the
analyze use case and the PyTorch frontend's inputs consume the request themselves.

Shapes come back as ``"AxB[:dtype]"`` texts (their batch already applied), tensors and plain
values as given, nested inputs as lists or tuples."""

from __future__ import annotations

from typing import Any

from modelmeter.inputs import InputItem, InputRequest, NestedInput, ShapeInput


def _item(item: InputItem) -> Any:
    if isinstance(item, ShapeInput):
        if not item.shape:
            return ()
        text = "x".join(str(d) for d in item.shape)
        return f"{text}:{item.dtype}" if item.dtype else text
    if isinstance(item, NestedInput):
        return item.container(_item(i) for i in item.items)
    return item.value


def legacy_inputs(request: InputRequest) -> tuple[Any, dict[str, Any] | None]:
    """``(inputs, kwargs)`` as ``modelmeter.api.analyze`` takes them."""
    args = [_item(i) for i in request.args]
    kwargs = {k: _item(i) for k, i in request.kwargs.items()}
    if not args:
        inputs: Any = None
    elif len(args) == 1 and not isinstance(request.args[0], NestedInput):
        inputs = args[0]
    else:
        inputs = tuple(args)
    return inputs, kwargs or None


__all__ = ["legacy_inputs"]
