"""The machine-readable report: ``Report.to_dict()`` as indented JSON (schema in the design)."""

from __future__ import annotations

import json

from modelmeter.report import Report


def render_json(report: Report) -> str:
    """One JSON object, schema ``modelmeter.report/1``; ``Report.from_dict`` reads it back."""
    return json.dumps(report.to_dict(), indent=2) + "\n"
