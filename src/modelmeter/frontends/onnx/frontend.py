"""The ONNX frontend as the use cases see it (:class:`modelmeter.frontends.base.Frontend`)."""

from __future__ import annotations

from typing import Any


class OnnxFrontend:
    name = "onnx"

    def accepts(self, model: Any) -> bool:
        raise NotImplementedError  # trace side: to be written

    def trace(self, model: Any, request: Any, *, mode: str, convention: str, backward: bool) -> Any:
        raise NotImplementedError  # trace side: to be written

    def runner(self) -> Any:
        """The run-and-time side (modelmeter.frontends.onnx.run)."""
        from modelmeter.frontends.onnx.run import RUNNER

        return RUNNER


FRONTEND = OnnxFrontend()
