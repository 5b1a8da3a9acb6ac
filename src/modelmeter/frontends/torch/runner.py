"""Running a model for real, to time it: ``modelmeter.measure`` and the calibration benchmarks.

How it measures (docs/measure.md has the reasoning):

* The model runs on a model of its own, never the user's: a named model is built directly on
  the device with its default (random) initialisation; a user's ``nn.Module`` is deep-copied
  and the copy moved to the device and dtype. Inputs are fresh tensors.
* ``torch.inference_mode``; ``warmup`` untimed calls, then ``repeats`` timed calls, each
  started on an idle device. CUDA calls are timed on the device with ``torch.cuda.Event``
  pairs (synchronised after each call), others with ``time.perf_counter`` after a device
  synchronisation. cuDNN autotuning (``cudnn.benchmark``) is on during the run; TF32 is
  off unless asked for, so that float32 means float32. Both settings are restored after.
* Per-module times (optional) come from a second series of calls with forward pre/post hooks
  on every module of the copy, each synchronising the device and reading ``perf_counter``:
  a module's time is its subtree's wall time, summed over its calls in one forward.
"""

from __future__ import annotations

import contextlib
import copy
import platform
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from modelmeter.analysis.measure import (
    MeasureResult,
    MemoryUse,
    Timings,
    summarize,
)
from modelmeter.errors import InputError, ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.torch.inputs import InputSpecs, torch_dtype
from modelmeter.host import PeakRSS, cpu_info, cpu_name, minor_faults
from modelmeter.units import canonical_dtype

DEVICES = ("cpu", "cuda", "mps")
UNSTABLE = 1.5  # calibration rounds whose median exceeds their best by this much: a busy device
Progress = Callable[[str, int, int], None]


# ---- devices -------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:1`` or ``mps`` as a usable torch.device (InputError if not)."""
    try:
        dev = torch.device(str(name).strip())
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {name!r} is not available: this machine has no usable CUDA GPU "
                f"(torch {torch.__version__})"
            )
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise InputError(
                f"device {name!r} is not available: {torch.cuda.device_count()} CUDA GPU(s)"
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"device {name!r} is not available: no Apple MPS backend here")
        return dev
    if dev.type != "cpu":
        raise InputError(f"unsupported device {name!r}; use one of {', '.join(DEVICES)}")
    return torch.device("cpu")


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return f"Apple {platform.machine()} (MPS)"
    return cpu_name()


def _vendor(dev: torch.device) -> str:
    if dev.type == "cuda":
        return "AMD" if getattr(torch.version, "hip", None) else "NVIDIA"
    if dev.type == "mps":
        return "Apple"
    vid = cpu_info().get("vendor_id", "")
    return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(vid, vid or platform.machine())


def _capacity(dev: torch.device) -> float | None:
    if dev.type == "cuda":
        return float(torch.cuda.get_device_properties(dev).total_memory)
    if dev.type == "mps":
        with contextlib.suppress(Exception):
            return float(torch.mps.recommended_max_memory())
        return None
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return float(int(line.split()[1]) * 1024)
    return None


@contextlib.contextmanager
def _backend_flags(dev: torch.device, tf32: bool) -> Iterator[None]:
    """cuDNN autotuning on and TF32 as asked, on CUDA only; restored afterwards."""
    if dev.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.benchmark
    cudnn.benchmark = True
    try:
        with tf32_allowed(tf32):
            yield
    finally:
        cudnn.benchmark = saved


@contextlib.contextmanager
def tf32_allowed(on: bool) -> Iterator[None]:
    """TF32 for float32 matmuls and convolutions on or off, restored afterwards. Works
    whichever API the process set TF32 with: once the newer ``fp32_precision`` settings are
    used, reading the legacy ``allow_tf32`` flags raises, so those settings are used then."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    try:
        (cudnn.allow_tf32, matmul.allow_tf32)  # noqa: B018 - raises under the newer API
        targets: list[tuple[Any, str, Any]] = [
            (cudnn, "allow_tf32", on),
            (matmul, "allow_tf32", on),
        ]
    except RuntimeError:
        mode = "tf32" if on else "ieee"
        targets = [(cudnn.conv, "fp32_precision", mode), (matmul, "fp32_precision", mode)]
    saved = [getattr(obj, key) for obj, key, _ in targets]
    for obj, key, value in targets:
        setattr(obj, key, value)
    try:
        yield
    finally:
        for (obj, key, _), value in zip(targets, saved, strict=True):
            setattr(obj, key, value)


# ---- building the model to run -------------------------------------------------------------


class _BuildOn(TorchFunctionMode):
    """While a named model is built: tensors meant for the meta device (``with
    torch.device("meta")``, ``device="meta"``, ``.to("meta")``) and tensors created without a
    device are created on ``device`` instead, so the model gets real, initialised weights and
    buffers computed while building (e.g. relative-position indices) keep their values."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device

    def _swap(self, value: Any) -> Any:
        if isinstance(value, (str, torch.device)):
            with contextlib.suppress(RuntimeError, ValueError):
                if torch.device(value).type == "meta":
                    return self.device
        return value

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch.utils._device import _device_constructors

        kwargs = dict(kwargs or {})
        if "device" in kwargs:
            kwargs["device"] = self._swap(kwargs["device"])
        if kwargs.get("device") is None and func in _device_constructors():
            kwargs["device"] = self.device
        if func is torch.Tensor.to:
            args = tuple(self._swap(a) for a in args)
        return func(*args, **kwargs)


def load_on_device(spec: str, dev: torch.device, seed: int = 0) -> Any:
    """Build a named model (``modelmeter.models.load``) with real random weights on ``dev``
    (on the CPU if building on ``dev`` fails; :func:`prepare` moves it)."""
    from modelmeter.models import load

    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            with _BuildOn(dev):
                return load(spec)
        except ModelmeterError:
            raise
        except Exception:  # noqa: BLE001 - a builder that needs the CPU (e.g. .numpy())
            if dev.type == "cpu":
                raise
        torch.manual_seed(seed)
        with _BuildOn(torch.device("cpu")):
            return load(spec)  # moved to the device by prepare()


def _on_meta(model: torch.nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _materialize(model: torch.nn.Module, dev: torch.device, notes: list[str]) -> None:
    """Move a module to ``dev`` with real values: meta tensors are allocated, parameters
    filled from N(0, 0.02) and buffers with zeros, then ``reset_parameters`` runs where a
    module has one; non-finite values (uninitialised memory) are replaced, so timings see
    ordinary numbers."""
    if not _on_meta(model):
        model.to(device=dev)
    else:
        model.to_empty(device=dev)
        with torch.no_grad():
            for t in model.parameters():
                if t.is_floating_point():
                    t.normal_(0.0, 0.02)
                else:
                    t.zero_()
            for t in model.buffers():
                t.zero_()
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                with contextlib.suppress(Exception):
                    reset()
        notes.append(
            "the model's weights were on the meta device: they were allocated and filled "
            "with random values; buffers computed at build time lost their values"
        )
    with torch.no_grad():
        for t in (*model.parameters(), *model.buffers()):
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
                t.normal_(0.0, 0.02)


@dataclass
class Prepared:
    """A model ready to time: its own copy on the device, inputs there, and what to analyse."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    label: str
    analysis_model: Any
    analysis_inputs: Any
    analysis_kwargs: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def prepare(
    model: Any,
    inputs: Any,
    kwargs: dict[str, Any] | None,
    dev: torch.device,
    dtype: str | None,
    batch: int | None,
) -> Prepared:
    """Build or copy the model onto ``dev`` in ``dtype`` and make its inputs there."""
    from modelmeter.frontends.torch.inputs import tensors_batched
    from modelmeter.inputs import InputRequest

    notes: list[str] = []
    label = None
    if isinstance(model, str):
        if model.lower().endswith(".onnx"):
            raise InputError("an ONNX file is measured with onnxruntime (measure_onnx)")
        loaded = load_on_device(model, dev)
        label, own = loaded.label, loaded.model
        if inputs is None and kwargs is None:
            inputs, kwargs = loaded.inputs, loaded.kwargs
        analysis_model = own
    elif isinstance(model, torch.nn.Module):
        analysis_model = model
        try:
            own = copy.deepcopy(model)
        except Exception as e:  # noqa: BLE001 - the user's module: one clear line
            raise ModelRunError(
                f"cannot copy the model to measure it: {type(e).__name__}: {e}"
            ) from None
        notes.append("measured a deep copy of the given module (the module itself is untouched)")
    elif callable(model):
        own = analysis_model = model
        notes.append("a plain callable: timed as given (no parameters to copy or move)")
    else:
        raise InputError(f"cannot measure a {type(model).__name__}: give a module or a name")
    request = InputRequest.from_api(inputs, kwargs, batch=batch)
    request.check_batch()
    cast = torch_dtype(dtype) if dtype else None
    if isinstance(own, torch.nn.Module):
        try:
            _materialize(own, dev, notes)
            if cast is not None:
                own.to(dtype=cast)
        except RuntimeError as e:
            raise ModelRunError(f"cannot place the model on {dev}: {first_line(e)}") from None
        if own.training:
            notes.append("the model is in training mode (as given): train-mode layers ran")
    specs = InputSpecs.from_request(request)
    if not specs.args and not specs.kwargs:
        raise InputError("no inputs given: pass a tensor or a shape such as '1x3x224x224'")
    args, kw = specs.materialize(dev, True, cast)
    analysed = tensors_batched(request)  # shapes and tensors at the batch: analysed as given
    return Prepared(
        model=own,
        args=args,
        kwargs=kw,
        label=label or _label(model),
        analysis_model=analysis_model,
        analysis_inputs=analysed.args,
        analysis_kwargs=dict(analysed.kwargs) or None,
        notes=notes,
    )


def _label(model: Any) -> str:
    if isinstance(model, torch.nn.Module):
        return type(model).__name__
    return getattr(model, "__name__", None) or type(model).__name__



# ---- memory --------------------------------------------------------------------------------


class _MemoryProbe:
    """Peak memory over the timed runs. CUDA: ``max_memory_allocated`` (reset first), tensors
    only. CPU: the process's peak resident set (VmHWM), reset to the current RSS before the
    runs where Linux allows it, else the lifetime high-water mark. MPS: the allocated memory
    sampled after each call (not a true peak)."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.method = ""
        self.baseline: int | None = None
        self.sampled = 0
        self.host = PeakRSS()

    def start(self) -> None:
        dev = self.dev
        if dev.type == "cuda":
            synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            self.baseline = int(torch.cuda.memory_allocated(dev))
            self.method = "cuda max_memory_allocated (tensors; excludes the allocator cache)"
        elif dev.type == "mps":
            self.baseline = int(torch.mps.current_allocated_memory())
            self.method = "mps current_allocated_memory, sampled after each call"
        else:
            self.host.start()
            self.baseline, self.method = self.host.baseline, self.host.method

    def sample(self) -> None:
        if self.dev.type == "mps":
            self.sampled = max(self.sampled, int(torch.mps.current_allocated_memory()))

    def finish(self) -> MemoryUse:
        dev = self.dev
        if dev.type == "cuda":
            peak: int | None = int(torch.cuda.max_memory_allocated(dev))
        elif dev.type == "mps":
            peak = self.sampled
        else:
            return self.host.finish()
        return MemoryUse(self.method, peak, self.baseline)


# ---- timing --------------------------------------------------------------------------------


class _Timer:
    """Seconds per call: CUDA events on CUDA, perf_counter elsewhere; the device is idle
    (synchronised) when each timed call starts, and the time ends when its work is done."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.cuda = dev.type == "cuda"
        self.name = "cuda events" if self.cuda else "perf_counter + device synchronize"
        if self.cuda:
            self.start_ev = torch.cuda.Event(enable_timing=True)
            self.end_ev = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], Any], calls: int = 1) -> float:
        synchronize(self.dev)
        if self.cuda:
            stream = torch.cuda.current_stream(self.dev)
            self.start_ev.record(stream)
            for _ in range(calls):
                fn()
            self.end_ev.record(stream)
            self.end_ev.synchronize()
            return self.start_ev.elapsed_time(self.end_ev) / 1e3 / calls
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(self.dev)
        return (time.perf_counter() - t0) / calls


class _ModuleClock:
    """Forward pre/post hooks on every module: synchronise, read the clock, add the module's
    (subtree) wall time to its total for the current forward."""

    def __init__(self, model: torch.nn.Module, dev: torch.device) -> None:
        self.dev = dev
        self.names = {id(m): n for n, m in model.named_modules()}
        self.starts: dict[int, list[float]] = defaultdict(list)
        self.current: dict[str, float] = defaultdict(float)
        self.handles: list[Any] = []
        for m in {id(m): m for m in model.modules()}.values():
            self.handles.append(m.register_forward_pre_hook(self._pre))
            self.handles.append(m.register_forward_hook(self._post))

    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        synchronize(self.dev)
        self.starts[id(module)].append(time.perf_counter())

    def _post(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        synchronize(self.dev)
        now = time.perf_counter()
        stack = self.starts.get(id(module))
        if stack:
            self.current[self.names[id(module)]] += now - stack.pop()

    def take(self) -> dict[str, float]:
        out, self.current = dict(self.current), defaultdict(float)
        self.starts.clear()
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


# Calls profiled for --per-class (at most --repeats): the profiler's own cost makes more
# of them slow, and classes vary less between calls than whole latencies do.
PROFILED_CALLS = 5


def time_model(
    model: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    dev: torch.device,
    *,
    warmup: int,
    repeats: int,
    per_module: bool = False,
    per_class: bool = False,
    tf32: bool = False,
    progress: Progress | None = None,
) -> Timings:
    """Time ``model(*args, **kwargs)`` on ``dev`` (see the module docstring for how)."""
    if warmup < 0 or repeats < 1:
        raise InputError("warmup must be >= 0 and repeats >= 1")
    timer = _Timer(dev)
    notes: list[str] = []
    probe = _MemoryProbe(dev)
    samples: list[float] = []
    hooked: list[float] = []
    module_samples: dict[str, list[float]] = defaultdict(list)
    steps = warmup + repeats + (repeats if per_module else 0) + (1 if per_class else 0)
    class_profile = None
    done = 0

    def call() -> None:
        model(*args, **kwargs)

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, steps)

    try:
        with _backend_flags(dev, tf32), torch.inference_mode():
            for _ in range(warmup):
                call()
                tick("warm-up")
            synchronize(dev)
            probe.start()
            faults_before = minor_faults()
            for _ in range(repeats):
                samples.append(timer.time(call))
                probe.sample()
                tick("timing")
            faults = (minor_faults() - faults_before) / repeats if dev.type == "cpu" else None
            memory = probe.finish()
            if per_module:
                if not isinstance(model, torch.nn.Module):
                    notes.append("per-module times need an nn.Module: skipped")
                else:
                    clock = _ModuleClock(model, dev)
                    try:
                        for _ in range(repeats):
                            hooked.append(timer.time(call))
                            for name, t in clock.take().items():
                                module_samples[name].append(t)
                            tick("per-module")
                    finally:
                        clock.remove()
            if per_class:
                from modelmeter.frontends.torch.profiling import profile_classes

                class_profile = profile_classes(call, dev, min(repeats, PROFILED_CALLS))
                tick("per-class")
    except ModelmeterError:
        raise
    except torch.cuda.OutOfMemoryError as e:
        raise ModelRunError(f"out of memory on {dev}: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - the model's own failure: one clear line
        raise ModelRunError(
            f"the model failed on {dev}: {type(e).__name__}: {first_line(e, '')}"
        ) from e
    if dev.type == "cuda":
        notes.append("cudnn.benchmark on during the run; TF32 " + ("on" if tf32 else "off"))
    threads = torch.get_num_threads() if dev.type == "cpu" else None
    return Timings(
        device=str(dev),
        device_name=device_name(dev),
        timer=timer.name,
        samples=samples,
        warmup=warmup,
        memory=memory,
        torch_version=f"torch {torch.__version__}",
        threads=threads,
        tf32=tf32 and dev.type == "cuda",
        hooked_samples=hooked,
        module_samples=dict(module_samples),
        notes=notes,
        page_faults=faults,
        page_size=resource.getpagesize(),
        class_profile=class_profile,
    )


# ---- the public entry point ----------------------------------------------------------------


def measure(
    model: Any,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
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
) -> MeasureResult:
    """Run ``model`` for real and time it; join the timings to its analysis.

    ``model``: a name (``torchvision:resnet50``; built on ``device`` with random weights), an
    ``nn.Module`` (a deep copy is measured: the module itself is never moved or changed), a
    callable, or an ``.onnx`` file (run by onnxruntime: ``measure_onnx``). ``inputs``/``kwargs``/``batch``/``dtype`` as for :func:`modelmeter.analyze`.
    ``hardware``: a spec name, a TOML path or a HardwareSpec; adds the roofline prediction
    and utilization. ``per_module``: also time every module with hooks (a second series of
    ``repeats`` calls). ``per_class``: also profile a few calls and time each kernel class
    (torch.profiler; docs/measure.md). ``tf32``: allow TF32 for float32 on CUDA (off by default).
    ``progress(stage, done, total)`` is called after every call.
    """
    import modelmeter
    from modelmeter.analysis.roofline import roofline
    from modelmeter.frontends.onnx.runner import is_onnx_path, measure_onnx

    if is_onnx_path(model):
        return measure_onnx(
            model, inputs, kwargs=kwargs, device=device, batch=batch, warmup=warmup,
            repeats=repeats, hardware=hardware, progress=progress, dtype=dtype,
            per_module=per_module, per_class=per_class, tf32=tf32,
        )  # fmt: skip
    if dtype is not None:
        try:
            dtype = canonical_dtype(dtype)
        except ValueError as e:
            raise InputError(str(e)) from None
    if batch is not None and batch < 1:
        raise InputError(f"batch must be >= 1 (got {batch})")
    if warmup < 0 or repeats < 1:
        raise InputError(f"warmup must be >= 0 and repeats >= 1 (got {warmup}, {repeats})")
    spec = _hardware(hardware)
    dev = resolve_device(device)
    prepared = prepare(model, inputs, kwargs, dev, dtype, batch)
    report = modelmeter.analyze(
        prepared.analysis_model,
        prepared.analysis_inputs,
        kwargs=prepared.analysis_kwargs,
        dtype=dtype,
    )
    report = replace(report, model=prepared.label)
    timings = time_model(
        prepared.model,
        prepared.args,
        prepared.kwargs,
        dev,
        warmup=warmup,
        repeats=repeats,
        per_module=per_module,
        per_class=per_class,
        tf32=tf32,
        progress=progress,
    )
    timings.notes[:0] = prepared.notes
    roof = None
    if spec is not None:
        roof = roofline(report, spec, phase="forward", tf32=tf32 and dev.type == "cuda")
    return summarize(timings, report, roof, dtype=dtype)


def _hardware(hardware: Any) -> Any:
    if hardware is None:
        return None
    from modelmeter.hardware import HardwareSpec, load_spec

    if isinstance(hardware, HardwareSpec):
        return hardware
    return load_spec(str(hardware))


__all__ = [
    "DEVICES",
    "tf32_allowed",
    "resolve_device",
    "synchronize",
    "device_name",
    "load_on_device",
    "prepare",
    "Prepared",
    "time_model",
    "measure",
]
