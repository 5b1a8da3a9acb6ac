"""The measure use case: run a model for real, time it, and join the timings to its analysis.

One pipeline for every frontend: check the options once, load the chip once, let the
model's frontend prepare it on the device (:meth:`Runner.prepare`), analyse what was
prepared, time it (:meth:`Runner.time`), then the roofline on the chip and the summary
(:func:`modelmeter.analysis.measure.summarize`). docs/measure.md has how each frontend runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from modelmeter.analysis.measure import MeasureResult, summarize
from modelmeter.analysis.roofline import roofline
from modelmeter.errors import InputError
from modelmeter.frontends import frontend_for
from modelmeter.frontends.base import Prepared, Progress, RunOptions
from modelmeter.inputs import InputRequest
from modelmeter.report import Report
from modelmeter.usecases.analyze import analyze


def measure(
    model: Any,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    dims: dict[str, int] | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    batch: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    per_module: bool = False,
    per_class: bool = False,
    hardware: Any = None,
    tf32: bool = False,
    progress: Progress | None = None,
    ideal: bool = False,
    runtime: str | None = None,
) -> MeasureResult:
    """Run ``model`` for real and time it; join the timings to its analysis.

    ``model``: a name (``torchvision:resnet50``; built on ``device`` with random weights), an
    ``nn.Module`` (a deep copy is measured: the module itself is never moved or changed), a
    callable, or an ``.onnx`` file (run by onnxruntime). ``inputs``/``kwargs``/``batch``/
    ``dtype``/``dims`` as for :func:`modelmeter.analyze` (or ``inputs`` an InputRequest).
    ``hardware``: a spec name, a TOML path or a HardwareSpec; adds the roofline prediction
    and utilization. ``per_module``: also time every module with hooks (a second series of
    ``repeats`` calls). ``per_class``: also profile a few calls and time each kernel class
    (docs/measure.md). ``tf32``: allow TF32 for float32 on CUDA (off by default).
    ``progress(stage, done, total)`` is called after every call. ``ideal``: predict on the
    datasheet roofline (efficiency 1.0) instead of the attainable figures; ``runtime``: the
    runtime the prediction prices (default: ort for an ONNX file, else eager).
    """
    runner = frontend_for(model).runner()
    given_dtype = inputs.dtype if isinstance(inputs, InputRequest) else dtype
    options = RunOptions(
        device=device, dtype=given_dtype, warmup=warmup, repeats=repeats,
        per_module=per_module, per_class=per_class, tf32=tf32,
    )  # fmt: skip
    runner.check(model, options)
    request = _request(inputs, kwargs, dims, dtype, batch)
    if warmup < 0 or repeats < 1:
        raise InputError(f"warmup must be >= 0 and repeats >= 1 (got {warmup}, {repeats})")
    options = replace(options, dtype=request.dtype)
    spec = _hardware(hardware)
    prepared = runner.prepare(model, request, options)
    report = _analyze(prepared)
    timings = runner.time(prepared, report, options, progress)
    timings.notes[:0] = prepared.notes
    roof = None
    if spec is not None:
        ran = "ort" if timings.torch_version.startswith("onnxruntime") else "eager"
        roof = roofline(report, spec, phase="forward", tf32=timings.tf32, ideal=ideal,
                        runtime=runtime or ran)
    return summarize(timings, report, roof, dtype=request.dtype)


def _request(
    inputs: Any,
    kwargs: dict[str, Any] | None,
    dims: dict[str, int] | None,
    dtype: str | None,
    batch: int | None,
) -> InputRequest:
    if isinstance(batch, int) and not isinstance(batch, bool) and batch < 1:
        raise InputError(f"batch must be >= 1 (got {batch})")
    return InputRequest.from_api(inputs, kwargs, batch=batch, dims=dims, dtype=dtype)


def _analyze(prepared: Prepared) -> Report:
    """The prepared model's analysis, named as the frontend labels it."""
    report = analyze(prepared.analysis_model, prepared.request)
    return report if prepared.label is None else replace(report, model=prepared.label)


def _hardware(hardware: Any) -> Any:
    if hardware is None:
        return None
    from modelmeter.hardware import HardwareSpec, load_spec

    if isinstance(hardware, HardwareSpec):
        return hardware
    return load_spec(str(hardware))


__all__ = ["measure"]
