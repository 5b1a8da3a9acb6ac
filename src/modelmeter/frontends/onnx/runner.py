"""Running an ONNX file for real with onnxruntime, to time it (``modelmeter measure FILE``).

The file is analysed first (the ONNX frontend: same counts as ``analyze``), then run by an
onnxruntime session on the device (``CPUExecutionProvider``, or ``CUDAExecutionProvider``
for ``cuda``/``cuda:N``) with onnxruntime's default graph optimisations, on random inputs of
the analysed shapes and dtypes. ``warmup`` untimed runs, then ``repeats`` timed ones, each
timed with ``time.perf_counter`` around ``InferenceSession.run`` (synchronous: on CUDA it
includes copying the inputs to the device and the outputs back). The file is only read.
"""

from __future__ import annotations

import gc
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from modelmeter.analysis.classes import ClassMeasured, ClassProfile
from modelmeter.analysis.measure import MeasureResult, Timings, summarize
from modelmeter.errors import InputError, ModelmeterError, ModelRunError, first_line
from modelmeter.host import PeakRSS, cpu_name, minor_faults
from modelmeter.registry import family_of
from modelmeter.report import InputSpec

Progress = Callable[[str, int, int], None]

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


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise InputError(
            "measuring an ONNX file needs onnxruntime: pip install 'modelmeter[onnx]'"
        ) from None
    return onnxruntime


def _providers(ort: Any, device: str) -> tuple[list[Any], str]:
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


def time_onnx(
    path: str,
    inputs: list[InputSpec],
    device: str,
    *,
    warmup: int,
    repeats: int,
    progress: Progress | None = None,
    per_class: bool = False,
) -> Timings:
    """Time an onnxruntime session of ``path`` on random ``inputs`` (see the module doc);
    ``per_class``: then profile a few runs in a second session (:func:`profile_classes`)."""
    ort = _ort()
    providers, label = _providers(ort, device)
    options = ort.SessionOptions()
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
    feeds = _feeds(inputs, session)
    steps, done = warmup + repeats, 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, steps)

    probe = PeakRSS()
    samples: list[float] = []
    try:
        for _ in range(warmup):
            session.run(None, feeds)
            tick("warm-up")
        probe.start()
        faults_before = minor_faults()
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run(None, feeds)
            samples.append(time.perf_counter() - t0)
            tick("timing")
        faults = (minor_faults() - faults_before) / repeats
    except ModelmeterError:
        raise
    except Exception as e:  # noqa: BLE001 - the model's own failure: one clear line
        raise ModelRunError(f"onnxruntime failed on {label}: {first_line(e)}") from None
    memory = probe.finish()
    cuda = label.startswith("cuda")
    threads = options.intra_op_num_threads or None  # 0: onnxruntime's default pool
    del session  # its idle worker threads would spin against the profiled session's
    gc.collect()
    profile = None
    if per_class:
        try:
            profile = profile_classes(path, providers, feeds, min(repeats, 5), max(1, warmup))
        except Exception as e:  # noqa: BLE001 - onnxruntime's own failure: one clear line
            raise ModelRunError(f"onnxruntime profiling failed: {first_line(e)}") from None
    return Timings(
        device=label,
        device_name=_cuda_name(label) if cuda else cpu_name(),
        timer="perf_counter around InferenceSession.run"
        + (" (includes host-device copies)" if cuda else ""),
        samples=samples,
        warmup=warmup,
        memory=memory,
        torch_version=f"onnxruntime {ort.__version__}",
        threads=None if cuda else threads,
        notes=[
            f"run by onnxruntime {ort.__version__} ({ran_on}, default graph optimisations: "
            "fused kernels, while the analysis counts the graph's ops unfused"
            + ("; its default thread pool: one thread per physical core)" if not cuda else ")")
        ],
        page_faults=None if cuda else faults,
        page_size=resource.getpagesize(),
        class_profile=profile,
    )


def profile_classes(
    path: str, providers: list[Any], feeds: dict[str, Any], runs: int, warmup: int = 1
) -> ClassProfile:
    """Time per kernel class from onnxruntime's own profiler (CPU): a second session with
    profiling on runs ``runs`` times after ``warmup`` runs; each node's kernel time goes to the
    class of its op type (a fused ``FusedConv`` to ``conv``; a convolution with one input
    channel per group to ``depthwise``; ops modelmeter has no formula for, such as layout
    reorders, to ``other``). The profile is written to a temporary folder and removed."""
    import json
    import shutil
    import tempfile

    ort = _ort()
    folder = tempfile.mkdtemp(prefix="modelmeter-ort-")
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        for _ in range(warmup):
            session.run(None, feeds)
        walls = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.run(None, feeds)
            walls.append(time.perf_counter() - t0)
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    nodes = nodes[len(nodes) * warmup // (runs + warmup):]  # drop the warm-up runs' nodes
    seconds: dict[str, float] = {}
    ops: dict[str, int] = {}
    for e in nodes:
        label = _node_class(e.get("args", {}))
        seconds[label] = seconds.get(label, 0.0) + float(e.get("dur", 0)) * 1e-6
        ops[label] = ops.get(label, 0) + 1
    return ClassProfile(
        method="onnxruntime profiler: kernel time of every graph node it ran",
        basis="onnxruntime kernel time per node (after its graph optimisations)",
        runs=runs,
        profiled_s=sorted(walls)[len(walls) // 2],
        mean_s=sum(walls) / len(walls) if walls else 0.0,
        classes=[
            ClassMeasured(kernel_class=k, seconds=seconds[k] / runs, ops=ops[k] / runs)
            for k in sorted(seconds, key=lambda k: -seconds[k])
        ],
        device_time=True,
        notes=[
            "onnxruntime fuses ops (an activation into its convolution, for example): a class "
            "with op records but no profiled ops was fused into another"
        ],
    )


def _node_class(args: dict[str, Any]) -> str:
    """The kernel class of a profiled node, as the roofline classes op records."""
    op = str(args.get("op_name", ""))
    family = family_of("onnx." + op) or family_of("onnx." + op.removeprefix("Fused"))
    if family is None:
        return "other"
    if family == "conv":
        shapes = [next(iter(d.values()), []) for d in args.get("input_type_shape", [])]
        if len(shapes) >= 2 and len(shapes[0]) >= 3 and len(shapes[1]) >= 3:
            if shapes[1][1] == 1 and shapes[0][1] > 1:
                return "depthwise"
    return family


def _cuda_name(label: str) -> str:
    """The GPU's name where torch can tell it, else the label."""
    try:
        import torch

        return torch.cuda.get_device_name(int(label.partition(":")[2] or 0))
    except Exception:  # noqa: BLE001 - a name is a nicety
        return label



def is_onnx_path(model: Any) -> bool:
    return isinstance(model, (str, os.PathLike)) and os.fspath(model).lower().endswith(".onnx")


def measure_onnx(
    path: str,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    dims: dict[str, int] | None = None,
    device: str = "cpu",
    batch: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
    hardware: Any = None,
    progress: Progress | None = None,
    dtype: str | None = None,
    per_module: bool = False,
    per_class: bool = False,
    tf32: bool = False,
) -> MeasureResult:
    """Analyse the ONNX file at ``path``, run it with onnxruntime and join the two (the
    ``measure`` of an ONNX file; the file itself is only read). ``per_class``: time each
    kernel class with onnxruntime's profiler (CPU). ``dtype``, ``per_module`` and ``tf32``
    are PyTorch options: given here, they are refused."""
    import modelmeter
    from modelmeter.analysis.roofline import roofline
    from modelmeter.hardware import HardwareSpec, load_spec

    for given, what in (
        (dtype, "--dtype: an ONNX file runs in the dtypes it was exported in"),
        (per_module, "--per-module: an ONNX graph has no modules to hook"),
        (tf32, "--tf32 is a PyTorch setting"),
    ):
        if given:
            raise InputError(f"{what} (measuring {os.fspath(path)})")
    path = os.fspath(path)
    if warmup < 0 or repeats < 1:
        raise InputError(f"warmup must be >= 0 and repeats >= 1 (got {warmup}, {repeats})")
    if per_class and str(device).strip().lower() != "cpu":
        raise InputError("--per-class for ONNX files profiles the CPU provider only")
    spec = None
    if hardware is not None:
        spec = hardware if isinstance(hardware, HardwareSpec) else load_spec(str(hardware))
    _providers(_ort(), device)  # a missing runtime or device fails before the analysis
    report = modelmeter.analyze(path, inputs, kwargs=kwargs, dims=dims, batch=batch)
    if any(s.shape and min(s.shape) < 0 for s in report.inputs):
        raise InputError(
            "an input dimension is unknown: give it with --input, --batch or --dim NAME=N"
        )
    timings = time_onnx(
        path,
        list(report.inputs),
        device,
        warmup=warmup,
        repeats=repeats,
        progress=progress,
        per_class=per_class,
    )
    roof = roofline(report, spec, phase="forward") if spec is not None else None
    return summarize(timings, report, roof)


__all__ = ["measure_onnx", "time_onnx", "is_onnx_path"]
