"""The fusion what-if (``analyze --fuse``): per module, kernels, bytes and predicted latency
unfused and fused, in table, md, csv or json. Pure: a function of a FusionWhatIf."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from modelmeter.render.formats import FUSION_FORMATS, unknown_format
from modelmeter.units import format_bytes, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.fusion import FusionRow, FusionWhatIf

HEAD = ("module", "kernels", "fused", "bytes", "fused bytes", "latency", "fused latency", "saved")


def _saved(r: FusionRow) -> str:
    if not r.latency_s:
        return "-"
    saved = 100 * (1 - r.fused_latency_s / r.latency_s)
    return f"{saved if abs(saved) >= 0.5 else 0:.0f}%"


def _cells(r: FusionRow, depth_indent: bool) -> list[str]:
    name = ("  " * r.depth if depth_indent else "") + r.name
    return [name, str(r.kernels), str(r.fused_kernels), format_bytes(r.bytes),
            format_bytes(r.fused_bytes), format_seconds(r.latency_s),
            format_seconds(r.fused_latency_s), _saved(r)]


def render_fusion(w: FusionWhatIf, fmt: str = "table", *, depth: int | None = 2) -> str:
    """The what-if in ``fmt``; table, md and csv show modules down to ``depth`` (None: all)."""
    if fmt not in FUSION_FORMATS:
        raise unknown_format(fmt, FUSION_FORMATS)
    if fmt == "json":
        return json.dumps(w.to_dict(), indent=2) + "\n"
    rows = [r for r in w.rows if depth is None or r.depth <= depth]
    if fmt == "csv":
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(["module", "depth", "kernels", "fused_kernels", "bytes", "fused_bytes",
                      "latency_s", "fused_latency_s"])
        for r in rows:
            out.writerow([r.name, r.depth, r.kernels, r.fused_kernels, r.bytes, r.fused_bytes,
                          repr(r.latency_s), repr(r.fused_latency_s)])
        return buf.getvalue()
    ideal = "; ideal figures (--ideal)" if w.figures == "ideal" else ""
    title = (f"Fusion what-if: {w.model} on {w.hardware} (runtime {w.runtime}{ideal}; rules: "
             f"{', '.join(w.rules) or 'none'})")
    t = w.total
    summary = (f"fusing: {t.kernels} -> {t.fused_kernels} kernels, {format_bytes(t.bytes)} -> "
               f"{format_bytes(t.fused_bytes)} moved, predicted {format_seconds(t.latency_s)} "
               f"-> {format_seconds(t.fused_latency_s)} ({_saved(t)} less)")
    if fmt == "md":
        lines = [f"**{title}**", "", "| " + " | ".join(HEAD) + " |",
                 "|---|" + "---:|" * (len(HEAD) - 1)]
        lines += ["| " + " | ".join(_cells(r, False)) + " |" for r in rows]
        return "\n".join([*lines, "", summary, *(f"- {n}" for n in w.notes)]) + "\n"
    table = [list(HEAD), *(_cells(r, True) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEAD))]
    lines = [title, ""]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w_) for c, w_ in zip(row[1:], widths[1:],
                                                                           strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join([*lines, "", summary, *(f"note: {n}" for n in w.notes)]) + "\n"


__all__ = ["render_fusion"]
