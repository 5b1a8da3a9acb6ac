"""The utilization of a chip at a given latency (``modelmeter utilization``) as aligned text
lines or JSON (pure functions of a Report and its Utilization)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render._common import md_pairs
from modelmeter.render.formats import UTILIZATION_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps
from modelmeter.units import format_count, format_peak, format_rate, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.utilization import Utilization
    from modelmeter.report import Report


def utilization_lines(report: Report, u: Utilization) -> list[tuple[str, str]]:
    """(label, value) lines: chip, peak, latency, MAC- and FLOP-based utilization, roofline."""
    checked = "verified figures" if u.spec.verified else "UNVERIFIED figures"
    peak = format_peak(u.peak, u.peak_key)
    latency = format_seconds(u.latency_s)
    rows = [
        ("model", report.model),
        ("hardware", f"{u.spec.display_name} ({u.spec.name}) · {checked}"),
        ("peak", f"{peak} ({u.peak_key}) for the model's {u.dtype} MACs"),
        ("latency", f"{latency} (given)"),
        (
            "MAC utilization",
            f"{100 * u.mac_utilization:.1f}% = 2 x {format_count(u.macs)} MACs / "
            f"{latency} = {format_rate(u.mac_ops_per_s, 'OP/s')} of {peak}",
        ),
        (
            "FLOP utilization",
            f"{100 * u.flop_utilization:.1f}% = {format_count(u.flops)} FLOPs "
            f"({report.convention}) / {latency} = {format_rate(u.flops_per_s)} of {peak}",
        ),
        (
            "roofline",
            f"predicts {format_seconds(u.predicted_latency_s)} (attainable FLOP utilization "
            f"{100 * u.attainable_utilization:.1f}%)",
        ),
    ]
    if u.throughput is not None:
        rows.append(("throughput", f"{u.throughput:,.1f} samples/s at batch {u.batch}"))
    rows += [("note", n) for n in u.notes]
    return rows


def render_utilization(report: Report, u: Utilization, fmt: str = "table") -> str:
    """The utilization in one of ``UTILIZATION_FORMATS``: ``table`` (aligned text), ``md``
    (the same lines as a Markdown table) or ``json`` (the model's name and
    ``Utilization.to_dict()``)."""
    if fmt == "json":
        return dumps({"model": report.model, **u.to_dict()})
    if fmt == "md":
        return md_pairs(f"Utilization: {report.model}", utilization_lines(report, u))
    if fmt != "table":
        raise unknown_format(fmt, UTILIZATION_FORMATS)
    rows = utilization_lines(report, u)
    width = max(len(k) for k, _ in rows)
    return "".join(f"{k:<{width}}  {v}\n" for k, v in rows)
