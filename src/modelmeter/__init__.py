"""modelmeter: exact MACs, FLOPs, parameters, bytes and activation memory of a model.

``import modelmeter`` imports neither torch nor onnx; frontends load them when used.
"""

from typing import Any

from modelmeter.errors import ModelmeterError
from modelmeter.report import DISPLAY, Cost, ModuleNode, Report
from modelmeter.usecases.analyze import analyze


def _notebook_html(report: Report) -> str:
    """A Report's Jupyter view (``Report._repr_html_``): the facade, on top of every layer,
    hands the Report to its renderer, so the Report never imports one."""
    from modelmeter.render.html import render_html

    return render_html(report)


DISPLAY["html"] = _notebook_html

# Loaded on first use (``modelmeter.roofline``, ``modelmeter.load_spec`` ...).
_LAZY = {
    "roofline": "modelmeter.analysis.roofline",
    "utilization": "modelmeter.analysis.utilization",
    "load_spec": "modelmeter.hardware",
    "list_specs": "modelmeter.hardware",
    "spec_from_peak": "modelmeter.hardware",
    "HardwareSpec": "modelmeter.hardware",
    "measure": "modelmeter.usecases.measure",
    "MeasureResult": "modelmeter.analysis.measure",
    "train": "modelmeter.usecases.train",
    "TrainingResult": "modelmeter.analysis.training",
    "sweep": "modelmeter.usecases.sweep",
    "formula": "modelmeter.usecases.sweep",
    "SweepResult": "modelmeter.analysis.sweep",
    "Formula": "modelmeter.analysis.sweep",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelmeter' has no attribute {name!r}")


__all__ = [
    "analyze",
    "Report",
    "Cost",
    "ModuleNode",
    "ModelmeterError",
    "roofline",
    "utilization",
    "load_spec",
    "list_specs",
    "spec_from_peak",
    "HardwareSpec",
    "measure",
    "MeasureResult",
    "train",
    "TrainingResult",
    "sweep",
    "formula",
    "SweepResult",
    "Formula",
    "__version__",
]
__version__ = "0.1.0"
