"""modelmeter: exact MACs, FLOPs, parameters, bytes and activation memory of a model.

``import modelmeter`` imports neither torch nor onnx; frontends load them when used.
"""

from modelmeter.api import analyze
from modelmeter.errors import ModelmeterError
from modelmeter.report import Cost, ModuleNode, Report

__all__ = ["analyze", "Report", "Cost", "ModuleNode", "ModelmeterError", "__version__"]
__version__ = "0.1.0"
