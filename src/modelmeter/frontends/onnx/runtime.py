"""onnxruntime, imported when an ONNX file is run (never by the analysis)."""

from __future__ import annotations

from typing import Any

from modelmeter.errors import InputError


def ort_module() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise InputError(
            "measuring an ONNX file needs onnxruntime: pip install 'modelmeter[onnx]'"
        ) from None
    return onnxruntime
