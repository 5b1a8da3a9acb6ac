"""The PyTorch frontend as the use cases see it (:class:`modelmeter.frontends.base.Frontend`)."""

from __future__ import annotations

from typing import Any


class TorchFrontend:
    name = "torch"

    def accepts(self, model: Any) -> bool:
        raise NotImplementedError  # trace side: to be written

    def trace(self, model: Any, request: Any, *, mode: str, convention: str, backward: bool) -> Any:
        raise NotImplementedError  # trace side: to be written

    def runner(self) -> Any:
        """The run-and-time side (modelmeter.frontends.torch.run)."""
        from modelmeter.frontends.torch.run import RUNNER

        return RUNNER


FRONTEND = TorchFrontend()
