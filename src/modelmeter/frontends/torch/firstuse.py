"""Work PyTorch defers to its first use, done once before the first trace and outside it.

PyTorch wraps every ``TorchDispatchMode.__torch_dispatch__`` (the tracer's among them) in a
function that imports ``torch._dynamo`` (some 900 modules) the first time it is called: in a
fresh process that is the trace's first op, deep inside the model's forward. The import
leaves reference cycles holding frame objects, and a frame keeps its callers' frames (so the
forward's locals) alive; with the garbage collector paused over the trace, the tensors they
hold stayed live until it ended. The first analysis in a process then reported a larger
activation peak than every later one (a small CNN: its first convolution's output counted
through the whole forward, 40320 bytes instead of 31104). Importing it here, in a thread of
its own, leaves those cycles holding only that thread's frames."""

from __future__ import annotations

import importlib
import threading

# modules PyTorch imports on first use (one this PyTorch lacks is skipped)
_DEFERRED = ("torch._dynamo",)

_LOCK = threading.Lock()
_DONE = False


def _import_all() -> None:
    for name in _DEFERRED:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a PyTorch without it: nothing deferred to do
            pass


def settle() -> None:
    """Do PyTorch's deferred first-use imports now, once per process (cheap afterwards).

    They run in a helper thread so that the cycles they leave reference none of the caller's
    frames (which may hold a model, its inputs or, in real mode, large tensors); should a
    thread not be available the caller imports them itself."""
    global _DONE
    if _DONE:
        return
    with _LOCK:
        if _DONE:
            return
        try:
            helper = threading.Thread(target=_import_all, name="modelmeter-firstuse", daemon=True)
            helper.start()
            helper.join()
        except RuntimeError:  # no new threads (interpreter shutting down)
            _import_all()
        _DONE = True
