"""Reading a saved report (``modelmeter analyze -f json``) given on the command line: a
``.json`` file is a report, anything else a model. Anything that is not a report is one
InputError (exit 2): ``old.json is not a modelmeter JSON report: ...``."""

from __future__ import annotations

import json
from typing import Any

from modelmeter.errors import InputError
from modelmeter.report import Report


def is_report_file(spec: str) -> bool:
    """Whether a MODEL argument names a saved JSON report (``hf:config.json`` is a model)."""
    return spec.lower().endswith(".json") and not spec.startswith("hf:")


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a report holds")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is out of range")
    return value


def read_report(path: str) -> tuple[Report, dict[str, Any]]:
    """The Report a JSON file holds, and the document itself (its roofline, when it was
    written with a chip)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, parse_constant=_no_constant, parse_float=_finite)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, NaN, nested too deep
        raise InputError(f"{path} is not a modelmeter JSON report: {e}") from None
    try:
        return Report.from_dict(data), data
    except InputError as e:
        raise InputError(f"{path} is not a modelmeter JSON report: {e}") from None
