"""Timing a PyTorch model on its device (``measure``; docs/measure.md has the reasoning).

* ``torch.inference_mode``; ``warmup`` untimed calls, then ``repeats`` timed calls, each
  started on an idle device. CUDA calls are timed on the device with ``torch.cuda.Event``
  pairs (synchronised after each call), others with ``time.perf_counter`` after a device
  synchronisation. cuDNN autotuning (``cudnn.benchmark``) is on during the run; TF32 is
  off unless asked for, so that float32 means float32. Both settings are restored after.
* Per-module times (optional) come from a second series of calls with forward pre/post hooks
  on every module, each synchronising the device and reading ``perf_counter``: a module's
  time is its subtree's wall time, summed over its calls in one forward.
* Per-class times (optional): a few calls profiled with torch.profiler (profiling.py).
"""

from __future__ import annotations

import resource
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from modelmeter.analysis.classes import ClassProfile
from modelmeter.analysis.timings import MemoryUse, Timings
from modelmeter.errors import ModelmeterError, ModelRunError, first_line
from modelmeter.frontends.base import Progress
from modelmeter.frontends.loop import Steps, timed_loop
from modelmeter.frontends.torch.device import backend_flags, device_name, synchronize
from modelmeter.host import PeakRSS


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
            peak = self.host.finish()
        return MemoryUse(self.method, peak, self.baseline)


class Timer:
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
    (subtree) wall time to its total for the current forward. Calls from other threads (a
    forward that starts its own) are not counted; scripted submodules, which take no hooks,
    are skipped. Every hook registered is removed by :meth:`remove`, also when registering
    fails part way."""

    def __init__(self, model: torch.nn.Module, dev: torch.device) -> None:
        self.dev = dev
        self.thread = threading.get_ident()
        self.names = {id(m): n for n, m in model.named_modules()}
        self.starts: dict[int, list[float]] = defaultdict(list)
        self.current: dict[str, float] = defaultdict(float)
        self.handles: list[Any] = []
        self.skipped = 0
        try:
            for m in {id(m): m for m in model.modules()}.values():
                if isinstance(m, torch.jit.ScriptModule):
                    self.skipped += 1
                    continue
                self.handles.append(m.register_forward_pre_hook(self._pre))
                self.handles.append(m.register_forward_hook(self._post))
        except BaseException:
            self.remove()
            raise

    def _pre(self, module: torch.nn.Module, args: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        synchronize(self.dev)
        self.starts[id(module)].append(time.perf_counter())

    def _post(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        if threading.get_ident() != self.thread:
            return
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
    timer = Timer(dev)
    probe = _MemoryProbe(dev)
    steps = Steps(
        warmup + repeats + (repeats if per_module else 0) + (1 if per_class else 0), progress
    )
    hooked = _Hooked()

    def call() -> None:
        model(*args, **kwargs)

    def start() -> None:
        synchronize(dev)
        probe.start()

    try:
        with backend_flags(dev, tf32), torch.inference_mode():
            timed = timed_loop(
                call, timer.time, steps, warmup=warmup, repeats=repeats, start=start,
                sample=probe.sample,
            )  # fmt: skip
            memory = probe.finish()
            if per_module:
                hooked.run(model, dev, call, timer, repeats, steps)
            class_profile = _profile(call, dev, repeats, steps) if per_class else None
    except ModelmeterError:
        raise
    except torch.cuda.OutOfMemoryError as e:
        raise ModelRunError(f"out of memory on {dev}: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - the model's own failure: one clear line
        raise ModelRunError(
            f"the model failed on {dev}: {type(e).__name__}: {first_line(e, '')}"
        ) from e
    notes = hooked.notes
    if dev.type == "cuda":
        notes.append("cudnn.benchmark on during the run; TF32 " + ("on" if tf32 else "off"))
    return Timings(
        device=str(dev),
        device_name=device_name(dev),
        timer=timer.name,
        samples=timed.samples,
        warmup=warmup,
        memory=memory,
        torch_version=f"torch {torch.__version__}",
        threads=torch.get_num_threads() if dev.type == "cpu" else None,
        tf32=tf32 and dev.type == "cuda",
        hooked_samples=hooked.samples,
        module_samples=dict(hooked.modules),
        notes=notes,
        page_faults=timed.page_faults if dev.type == "cpu" else None,
        page_size=resource.getpagesize(),
        class_profile=class_profile,
    )


class _Hooked:
    """The per-module series: whole hooked forwards and each module's time in them."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.modules: dict[str, list[float]] = defaultdict(list)
        self.notes: list[str] = []

    def run(
        self,
        model: Any,
        dev: torch.device,
        call: Callable[[], Any],
        timer: Timer,
        repeats: int,
        steps: Steps,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            self.notes.append("per-module times need an nn.Module: skipped")
            return
        clock = _ModuleClock(model, dev)  # removes its own hooks if it fails
        if clock.skipped:
            self.notes.append(f"per-module times skip {clock.skipped} scripted submodule(s)")
        try:
            for _ in range(repeats):
                self.samples.append(timer.time(call))
                for name, t in clock.take().items():
                    self.modules[name].append(t)
                steps.tick("per-module")
        finally:
            clock.remove()


def _profile(
    call: Callable[[], Any], dev: torch.device, repeats: int, steps: Steps
) -> ClassProfile:
    from modelmeter.frontends.torch.profiling import profile_classes

    profile = profile_classes(call, dev, min(repeats, PROFILED_CALLS))
    steps.tick("per-class")
    return profile


__all__ = ["PROFILED_CALLS", "time_model"]
