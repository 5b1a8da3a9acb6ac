"""The ONNX frontend as the use cases see it (:class:`modelmeter.frontends.base.Frontend`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from modelmeter.errors import InputError

if TYPE_CHECKING:
    from modelmeter.events import Trace
    from modelmeter.inputs import InputRequest


class OnnxFrontend:
    name = "onnx"

    def accepts(self, model: Any) -> bool:
        """A path (str or PathLike) ending in ``.onnx``, or an ``onnx.ModelProto`` (checked by
        its type's name: onnx is not imported)."""
        if isinstance(model, (str, os.PathLike)):
            return os.fspath(model).lower().endswith(".onnx")
        return type(model).__name__ == "ModelProto"

    def trace(
        self,
        model: Any,
        request: InputRequest,
        *,
        mode: str,
        convention: str,
        backward: bool,
    ) -> Trace:
        """The graph's one forward pass; ``mode`` does not apply (a graph is read, not run)."""
        if backward:
            raise InputError("an ONNX graph has no backward pass to trace")
        from modelmeter.frontends.onnx.tracing import trace

        return trace(model, request, convention=convention)

    def runner(self) -> Any:
        """The run-and-time side (modelmeter.frontends.onnx.run)."""
        from modelmeter.frontends.onnx.run import RUNNER

        return RUNNER


FRONTEND = OnnxFrontend()
