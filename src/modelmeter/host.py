"""What the host process can tell about itself without a framework: the CPU's name, peak
resident memory over a span of calls, and minor page faults (memory first touched); and the
garbage collector paused over an analysis (:func:`collector_paused`). Used by
the PyTorch runner on the CPU and by the ONNX runner everywhere. Imports nothing of
modelmeter's: the runners turn its figures into a MemoryUse."""

from __future__ import annotations

import contextlib
import gc
import platform
import resource
import sys
import threading
from collections.abc import Iterator


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in out:
                    out[key.strip()] = value.strip()
    return out


def cpu_name() -> str:
    return cpu_info().get("model name") or platform.processor() or platform.machine() or "CPU"


def minor_faults() -> int:
    """Minor page faults of this process so far (memory first touched after allocation)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _proc_status_kb(field_name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    return None


def _maxrss() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


class PeakRSS:
    """The process's peak resident set over a span (VmHWM, reset to the current RSS at the
    start where Linux allows it, else the lifetime high-water mark), and its RSS before."""

    def __init__(self) -> None:
        self.method = ""
        self.baseline: int | None = None

    def start(self) -> None:
        reset = False
        with contextlib.suppress(OSError):
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets this process's peak RSS (VmHWM) to its current RSS
            reset = True
        rss = _proc_status_kb("VmRSS")
        if reset and rss is not None:
            self.baseline = rss * 1024
            self.method = "process peak RSS (VmHWM, reset before the runs) over RSS before"
        else:
            self.baseline = _maxrss()
            self.method = (
                "process lifetime peak RSS (ru_maxrss); the delta is 0 when an earlier "
                "peak was higher"
            )

    def finish(self) -> int:
        """The peak resident set since :meth:`start`, in bytes (see ``method``)."""
        hwm = _proc_status_kb("VmHWM")
        return hwm * 1024 if hwm is not None and "VmHWM" in self.method else _maxrss()


_PAUSE_LOCK = threading.Lock()
_PAUSES = 0  # spans (in any thread) that want the collector off
_WAS_ENABLED = False  # the collector's state when the first of them began


def pause_collector() -> None:
    """Begin a span with Python's cyclic garbage collector off (see :func:`collector_paused`;
    end it with :func:`resume_collector`). Counted across threads: the collector is put back
    as it was when the last span running in any thread ends, never while another runs."""
    global _PAUSES, _WAS_ENABLED
    with _PAUSE_LOCK:
        if _PAUSES == 0:
            _WAS_ENABLED = gc.isenabled()
            gc.disable()
        _PAUSES += 1


def resume_collector() -> None:
    """End a span begun by :func:`pause_collector`."""
    global _PAUSES
    with _PAUSE_LOCK:
        _PAUSES -= 1
        if _PAUSES == 0 and _WAS_ENABLED:
            gc.enable()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a span, then as it was (also a decorator).

    An analysis allocates a few hundred thousand small objects that all live until it
    returns (the trace's events and tensor records, the Report's op records, the roofline's
    times); every collection of the older generations walks all of them again, which cost
    20-40 % of a 70B generation or training-step analysis. Reference counting still frees
    whatever is not in a cycle; cycles left are collected by the next collection after the
    span. Spans nest and overlap across threads (:func:`pause_collector`)."""
    pause_collector()
    try:
        yield
    finally:
        resume_collector()


__all__ = [
    "cpu_info",
    "cpu_name",
    "minor_faults",
    "PeakRSS",
    "collector_paused",
    "pause_collector",
    "resume_collector",
]
