"""One device's peak under a sharded plan as text lines (under the memory table of
``modelmeter train``): a pure function of a
:class:`~modelmeter.analysis.training.TrainingResult`'s ``device_peak``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.units import format_bytes

if TYPE_CHECKING:
    from modelmeter.analysis.training import TrainingResult


def device_peak_lines(r: TrainingResult) -> list[str]:
    """'peak per device' with its parts (they add up to it) and the verdict against the chip;
    under ZeRO-3 the gathered weights' assumption and figures."""
    p = r.device_peak
    if p is None:
        return []
    where = f"{p.phase}, {p.op} in module {p.module or '<root>'}"
    if p.later:
        where += ", a later micro-batch"
    parts = [f"weights, buffers and optimizer {format_bytes(p.states)}",
             f"gradients {format_bytes(p.gradients)}"]
    if p.gathered_units.units:
        parts.append(f"gathered weights {format_bytes(p.gathered)}")
    parts.append(f"activations and temporaries {format_bytes(p.other)}")
    verdict = ""
    if r.time is not None and r.time.capacity is not None:
        cap = r.time.capacity
        verdict = (f"; fits {r.time.chip}, {format_bytes(cap - p.bytes)} to spare"
                   if p.bytes <= cap else
                   f"; does NOT fit {r.time.chip}: {format_bytes(p.bytes - cap)} over")  # fmt: skip
    lines = [f"  peak per device {format_bytes(p.bytes)} ({where}) = " + " + ".join(parts)
             + verdict]  # fmt: skip
    g = p.gathered_units
    if g.units:
        lines.append(
            f"  gathered weights (ZeRO-3: two units' full weights at once, the one running and "
            f"the one prefetched; the backward also the unit's full gradient): forward "
            f"{format_bytes(g.forward)}, backward {format_bytes(g.backward)} "
            f"({', '.join(g.units)})"
        )
    if r.parallel is not None:
        lines.append("  (activations in the peak per device: one device running the whole "
                     "micro-batch, not split by tensor or pipeline parallelism)")  # fmt: skip
    return lines


__all__ = ["device_peak_lines"]
