"""The PyTorch frontend as the use cases see it (:class:`modelmeter.frontends.base.Frontend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelmeter.events import Trace
    from modelmeter.inputs import InputRequest


class TorchFrontend:
    name = "torch"

    def accepts(self, model: Any) -> bool:
        """An ``nn.Module``, any callable, or a model name (``torchvision:resnet50`` ...): every
        model the frontends before this one (ONNX) do not take. Imports nothing."""
        return isinstance(model, str) or callable(model)

    def trace(
        self,
        model: Any,
        request: InputRequest,
        *,
        mode: str,
        convention: str,
        backward: bool,
        name: str | None = None,
    ) -> Trace:
        """One pass of a module or callable (a name is loaded by the use case first);
        ``name``: the report's label (default: the model's class or function name)."""
        from modelmeter.frontends.torch.tracing import trace

        return trace(
            model, request, mode=mode, convention=convention, backward=backward, name=name
        )

    def load(self, name: str, real: bool = False) -> Any:
        """The :class:`~modelmeter.models.loaded.LoadedModel` a name builds: on the meta device
        (shapes only, the default), or with ``real`` random weights on the CPU (seeded, the
        same each time) for a real-mode analysis."""
        if not real:
            from modelmeter.models import load

            return load(name)
        import torch

        from modelmeter.frontends.torch.building import load_on_device

        return load_on_device(name, torch.device("cpu"))

    def runner(self) -> Any:
        """The run-and-time side (modelmeter.frontends.torch.run)."""
        from modelmeter.frontends.torch.run import RUNNER

        return RUNNER


FRONTEND = TorchFrontend()
