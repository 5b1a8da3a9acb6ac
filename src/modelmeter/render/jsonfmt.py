"""The machine-readable report: ``Report.to_dict()`` as indented JSON (schema in the design).

Every JSON modelmeter writes goes through :func:`dumps`: strict JSON (RFC 8259), never
``Infinity`` or ``NaN``. The boundary refuses the figures that would produce them (see
``hardware.quantities.FIGURE_RANGE``); should a non-finite number still reach a renderer, it
is written as ``null`` (unknown), never as invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from modelmeter.render.experts import experts_field
from modelmeter.report import Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (inf, nan) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """``obj`` as indented strict JSON (non-finite numbers as null), with a final newline."""
    return json.dumps(finite(obj), indent=2, allow_nan=False) + "\n"


def report_dict(report: Report, roofline: Roofline | None = None) -> dict[str, Any]:
    """``report.to_dict()``; with a roofline also ``"hardware"`` (the spec used) and
    ``"roofline"`` at the top level and per module (the report itself is not changed)."""
    d = report.to_dict()
    experts = experts_field(report)
    if experts is not None:  # a mixture-of-experts model: total and active parameters
        d["experts"] = experts
    if roofline is None:
        return d
    d["hardware"] = {**roofline.spec.to_dict(), "path": roofline.spec.path}
    d["roofline"] = roofline.to_dict()
    for m in d["modules"]:
        m["roofline"] = roofline.modules[m["name"]].to_dict()
    return d


def render_json(report: Report, roofline: Roofline | None = None) -> str:
    """One JSON object, schema ``modelmeter.report/1``; ``Report.from_dict`` reads it back."""
    return dumps(report_dict(report, roofline))
