"""The PyTorch frontend's runner (:class:`modelmeter.frontends.base.Runner`): the model built
or copied onto the device (building.py), then timed there (timing.py)."""

from __future__ import annotations

from typing import Any

from modelmeter.analysis.timings import Timings
from modelmeter.frontends.base import Prepared, Progress, RunOptions
from modelmeter.frontends.torch.building import prepare
from modelmeter.frontends.torch.device import resolve_device
from modelmeter.frontends.torch.inputs import refuse_dims
from modelmeter.frontends.torch.timing import time_model
from modelmeter.inputs import InputRequest
from modelmeter.report import Report


class TorchRunner:
    """Runs a module, a callable or a named model with PyTorch on cpu, cuda[:N] or mps."""

    def check(self, model: Any, options: RunOptions) -> None:
        """Every measure option applies to PyTorch (TF32 only matters on CUDA)."""

    def prepare(self, model: Any, request: InputRequest, options: RunOptions) -> Prepared:
        refuse_dims(request)
        return prepare(model, request, resolve_device(options.device))

    def time(
        self,
        prepared: Prepared,
        report: Report,
        options: RunOptions,
        progress: Progress | None = None,
    ) -> Timings:
        return time_model(
            prepared.model,
            prepared.args,
            prepared.kwargs,
            prepared.device,
            warmup=options.warmup,
            repeats=options.repeats,
            per_module=options.per_module,
            per_class=options.per_class,
            tf32=options.tf32,
            progress=progress,
        )


RUNNER = TorchRunner()

__all__ = ["RUNNER", "TorchRunner"]
