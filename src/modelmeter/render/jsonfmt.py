"""The machine-readable report: ``Report.to_dict()`` as indented JSON (schema in the design)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modelmeter.report import Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline


def report_dict(report: Report, roofline: Roofline | None = None) -> dict[str, Any]:
    """``report.to_dict()``; with a roofline also ``"hardware"`` (the spec used) and
    ``"roofline"`` at the top level and per module (the report itself is not changed)."""
    d = report.to_dict()
    if roofline is None:
        return d
    d["hardware"] = {**roofline.spec.to_dict(), "path": roofline.spec.path}
    d["roofline"] = roofline.to_dict()
    for m in d["modules"]:
        m["roofline"] = roofline.modules[m["name"]].to_dict()
    return d


def render_json(report: Report, roofline: Roofline | None = None) -> str:
    """One JSON object, schema ``modelmeter.report/1``; ``Report.from_dict`` reads it back."""
    return json.dumps(report_dict(report, roofline), indent=2) + "\n"
