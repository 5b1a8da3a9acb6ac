"""The mixture-of-experts line of a report (table and Markdown) and its JSON field: total
and active parameters per token, with the routing they assume. Nothing for a dense model."""

from __future__ import annotations

from typing import Any

from modelmeter.analysis.experts import experts_summary
from modelmeter.report import Report
from modelmeter.units import format_params


def active_params_text(report: Report) -> str | None:
    """``12.88B (12,879,925,248) per token of 46.70B: top-2 of 8 experts in 32 MoE layers
    (...)``; None for a model without expert layers."""
    s = experts_summary(report)
    if s is None:
        return None
    shapes = sorted({(layer.top_k, layer.experts) for layer in s.layers})
    routed = ", ".join(f"top-{k} of {e} experts" for k, e in shapes)
    return (
        f"{format_params(s.active_params)} ({s.active_params:,}) per token of "
        f"{format_params(s.params)}: {routed} in {len(s.layers)} MoE layer"
        f"{'s' if len(s.layers) != 1 else ''} (every token to its top-k experts)"
    )


def experts_field(report: Report) -> dict[str, Any] | None:
    """The report JSON's ``"experts"`` object (None for a dense model): ``params``,
    ``active_params``, ``routing`` and one entry per expert layer."""
    s = experts_summary(report)
    return None if s is None else s.to_dict()
