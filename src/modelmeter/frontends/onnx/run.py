"""The ONNX frontend's runner (:class:`modelmeter.frontends.base.Runner`): an ONNX file run
by onnxruntime (timing.py) on random inputs of the analysed shapes; the file is only read."""

from __future__ import annotations

import os
from typing import Any

from modelmeter.analysis.timings import Timings
from modelmeter.errors import InputError
from modelmeter.frontends.base import Prepared, Progress, RunOptions
from modelmeter.frontends.onnx.runtime import ort_module
from modelmeter.frontends.onnx.timing import providers_for, time_onnx
from modelmeter.inputs import InputRequest
from modelmeter.report import Report


class OnnxRunner:
    """Runs an ``.onnx`` file with onnxruntime on cpu or cuda[:N]."""

    def check(self, model: Any, options: RunOptions) -> None:
        """``dtype``, ``per_module`` and ``tf32`` are PyTorch options: refused here, as is
        ``per_class`` off the CPU (onnxruntime's profiler times the CPU provider)."""
        for given, what in (
            (options.dtype, "--dtype: an ONNX file runs in the dtypes it was exported in"),
            (options.per_module, "--per-module: an ONNX graph has no modules to hook"),
            (options.tf32, "--tf32 is a PyTorch setting"),
        ):
            if given:
                raise InputError(f"{what} (measuring {_name(model)})")
        if options.per_class and str(options.device).strip().lower() != "cpu":
            raise InputError("--per-class for ONNX files profiles the CPU provider only")

    def prepare(self, model: Any, request: InputRequest, options: RunOptions) -> Prepared:
        """The file as it is: a missing runtime or device fails here, before the analysis."""
        if not isinstance(model, (str, os.PathLike)):  # an onnx.ModelProto: no file to run
            raise InputError(f"cannot measure a {type(model).__name__}: give an .onnx file")
        path = os.fspath(model)
        providers_for(ort_module(), options.device)
        return Prepared(model=path, device=options.device, request=request, analysis_model=path)

    def time(
        self,
        prepared: Prepared,
        report: Report,
        options: RunOptions,
        progress: Progress | None = None,
    ) -> Timings:
        if any(s.shape and min(s.shape) < 0 for s in report.inputs):
            raise InputError(
                "an input dimension is unknown: give it with --input, --batch or --dim NAME=N"
            )
        return time_onnx(
            prepared.model,
            list(report.inputs),
            prepared.device,
            warmup=options.warmup,
            repeats=options.repeats,
            progress=progress,
            per_class=options.per_class,
        )


def _name(model: Any) -> str:
    return os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__


RUNNER = OnnxRunner()

__all__ = ["RUNNER", "OnnxRunner"]
