"""Timing an ONNX file with onnxruntime (``modelmeter measure FILE``).

An onnxruntime session of the file runs on the device (``CPUExecutionProvider``, or
``CUDAExecutionProvider`` for ``cuda``/``cuda:N``) with onnxruntime's default graph
optimisations, on random inputs of the analysed shapes and dtypes. ``warmup`` untimed runs,
then ``repeats`` timed ones, each timed with ``time.perf_counter`` around
``InferenceSession.run`` (synchronous: on CUDA it includes copying the inputs to the device
and the outputs back). The file is only read.
"""

from __future__ import annotations

import functools
import gc
import resource
import time
from collections.abc import Callable
from typing import Any

from modelmeter.analysis.timings import MemoryUse, Timings
from modelmeter.errors import InputError, ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.base import Progress
from modelmeter.frontends.loop import Steps, timed_loop
from modelmeter.frontends.onnx.runtime import ort_module
from modelmeter.host import PeakRSS, cpu_name
from modelmeter.report import InputSpec

# numpy dtype names of the canonical dtypes an ONNX input may have
_NUMPY = {
    "float32": "float32",
    "float16": "float16",
    "float64": "float64",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


def providers_for(ort: Any, device: str) -> tuple[list[Any], str]:
    """onnxruntime providers for ``device`` and the device's label (InputError if absent)."""
    name = str(device).strip().lower()
    kind, _, index = name.partition(":")
    if kind == "cpu" and not index:
        return ["CPUExecutionProvider"], "cpu"
    if kind == "cuda" and (not index or index.isdigit()):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError(
                f"device {device!r} is not available to onnxruntime {ort.__version__} here "
                "(no CUDAExecutionProvider: install onnxruntime-gpu)"
            )
        dev_id = int(index or 0)
        return [("CUDAExecutionProvider", {"device_id": dev_id})], f"cuda:{dev_id}"
    raise InputError(f"cannot run an ONNX file on {device!r} here; use cpu or cuda[:N]")


def _feeds(inputs: list[InputSpec], session: Any) -> dict[str, Any]:
    """Random arrays for the session's inputs, in the analysed shapes and dtypes (floats
    normal, integers and booleans zero: valid indices and masks)."""
    import numpy as np

    rng = np.random.default_rng(0)
    by_name = {spec.name: spec for spec in inputs}
    feeds = {}
    for arg in session.get_inputs():
        spec = by_name.get(arg.name)
        if spec is None:
            raise InputError(f"onnxruntime expects an input {arg.name!r} the analysis has not")
        np_dtype = _NUMPY.get(spec.dtype)
        if np_dtype is None:
            raise InputError(
                f"input {arg.name!r} is {spec.dtype}, which onnxruntime's Python API cannot "
                "be fed"
            )
        if np_dtype.startswith("float"):
            feeds[arg.name] = rng.standard_normal(spec.shape).astype(np_dtype)
        else:
            feeds[arg.name] = np.zeros(spec.shape, dtype=np_dtype)
    return feeds


def _session(ort: Any, path: str, providers: list[Any], label: str,
             threads: int | None = None) -> tuple[Any, Any, str]:
    """An onnxruntime session of ``path``, its options and the provider it runs on
    (``threads``: intra-op threads; None, onnxruntime's default pool)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime's own refusal: one clear line
        raise ModelRunError(f"onnxruntime cannot load {path}: {first_line(e)}") from None
    ran_on = session.get_providers()[0]
    if label.startswith("cuda") and ran_on != "CUDAExecutionProvider":
        raise ModelRunError(
            f"onnxruntime could not start its CUDA provider for {path} (it fell back to "
            f"{ran_on}); check the CUDA and cuDNN libraries onnxruntime-gpu needs"
        )
    return session, options, ran_on


def _clock(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def time_onnx(
    path: str,
    inputs: list[InputSpec],
    device: str,
    *,
    warmup: int,
    repeats: int,
    progress: Progress | None = None,
    per_class: bool = False,
    threads: int | None = None,
) -> Timings:
    """Time an onnxruntime session of ``path`` on random ``inputs`` (see the module doc);
    ``per_class``: then profile a few runs in a second session (profiling.py); ``threads``:
    intra-op threads (None: onnxruntime's default pool; bench/ort_loop.py runs 1)."""
    ort = ort_module()
    providers, label = providers_for(ort, device)
    session, options, ran_on = _session(ort, path, providers, label, threads)
    feeds = _feeds(inputs, session)
    call = functools.partial(session.run, None, feeds)
    probe = PeakRSS()
    try:
        timed = timed_loop(
            call, _clock, Steps(warmup + repeats, progress),
            warmup=warmup, repeats=repeats, start=probe.start,
        )  # fmt: skip
    except ModelmeterError:
        raise
    except Exception as e:  # noqa: BLE001 - the model's own failure: one clear line
        raise ModelRunError(f"onnxruntime failed on {label}: {first_line(e)}") from None
    memory = MemoryUse(probe.method, probe.finish(), probe.baseline)
    cuda = label.startswith("cuda")
    threads = options.intra_op_num_threads or None  # 0: onnxruntime's default pool
    del session, call  # its idle worker threads would spin against the profiled session's
    gc.collect()
    profile = _profile(path, providers, feeds, repeats, warmup) if per_class else None
    return Timings(
        device=label,
        device_name=_cuda_name(label) if cuda else cpu_name(),
        timer="perf_counter around InferenceSession.run"
        + (" (includes host-device copies)" if cuda else ""),
        samples=timed.samples,
        warmup=warmup,
        memory=memory,
        torch_version=f"onnxruntime {ort.__version__}",
        threads=None if cuda else threads,
        notes=[
            f"run by onnxruntime {ort.__version__} ({ran_on}, default graph optimisations: "
            "fused kernels, while the analysis counts the graph's ops unfused"
            + (")" if cuda else f"; {threads} intra-op thread(s))" if threads
               else "; its default thread pool: one thread per physical core)")
        ],
        page_faults=None if cuda else timed.page_faults,
        page_size=resource.getpagesize(),
        class_profile=profile,
    )


def _profile(
    path: str, providers: list[Any], feeds: dict[str, Any], repeats: int, warmup: int
) -> Any:
    from modelmeter.frontends.onnx.profiling import profile_classes

    try:
        return profile_classes(path, providers, feeds, min(repeats, 5), max(1, warmup))
    except Exception as e:  # noqa: BLE001 - onnxruntime's own failure: one clear line
        raise ModelRunError(f"onnxruntime profiling failed: {first_line(e)}") from None


def _cuda_name(label: str) -> str:
    """The GPU's name where torch can tell it, else the label."""
    try:
        import torch

        return torch.cuda.get_device_name(int(label.partition(":")[2] or 0))
    except Exception:  # noqa: BLE001 - a name is a nicety
        return label


__all__ = ["ort_module", "providers_for", "time_onnx"]
