"""The launch time per kernel class, measured by ``modelmeter calibrate`` on a CUDA device:
``[overhead.launch_classes]`` of the spec it writes (docs/measure.md, "What calibrate
measures"; the roofline's ``L``: docs/hardware.md, "Launch time per kernel class").

Per class, one tiny op (:data:`modelmeter.frontends.torch.launch_bench.LAUNCH_CASES`) is
timed on the device alone, replayed from a CUDA graph; its launch time is that less the op's
roofline busy time on the ceilings just calibrated, at least 0::

    L[class] = max(0, device seconds per op - busy seconds of the op)
    launch   = L["elementwise"]        (a class not measured: one pointwise kernel's)

On a CPU (and MPS) nothing is measured: each op's overhead is paid in series there and the
per-op overhead already holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelmeter.analysis.roofline import roofline
from modelmeter.hardware.spec import HardwareSpec

DEFAULT_CLASS = "elementwise"


def launch_figures(measured: Mapping[str, float], busy: Mapping[str, float]
                   ) -> tuple[float | None, dict[str, float]]:
    """(the default launch, per class) from each class's device seconds per op and its
    roofline busy seconds."""
    classes = {cls: max(0.0, t - busy.get(cls, 0.0)) for cls, t in measured.items()}
    return classes.get(DEFAULT_CLASS), classes


def measure_launches(bench: Any, dtype: str, spec: HardwareSpec,
                     analyze: Callable[..., Any], details: dict[str, Any]) -> dict[str, float]:
    """Device seconds beyond the roofline per kernel class on ``bench``'s CUDA device, in
    ``dtype`` (empty elsewhere). A class whose graph cannot be captured is left out and said
    in ``details``."""
    if bench.type != "cuda":
        return {}
    from modelmeter.frontends.torch.inputs import torch_dtype
    from modelmeter.frontends.torch.launch_bench import graph_time, launch_cases

    measured: dict[str, float] = {}
    busy: dict[str, float] = {}
    for cls, run, (fn, host) in launch_cases(bench.dev, torch_dtype(dtype)):
        try:
            measured[cls] = graph_time(run, bench.timer)
        except Exception as e:  # noqa: BLE001 - a side figure: one class that cannot be
            # captured (a library's kernel refusing graphs) must not cost the calibration
            first = (str(e).splitlines() or [type(e).__name__])[0][:80]
            details[f"launch {cls}"] = f"not measured ({first})"
            continue
        busy[cls] = roofline(analyze(fn, host), spec).latency_s
        details[f"launch {cls} {dtype}"] = (f"{measured[cls] * 1e6:.2f} us per op, "
                                            f"busy {busy[cls] * 1e6:.2f} us")
    return launch_figures(measured, busy)[1]


__all__ = ["DEFAULT_CLASS", "launch_figures", "measure_launches"]
