"""One device of a planned training step as aligned text rows: its model states, the saved
activations it holds (tensor / sequence / pipeline split and the schedule's in-flight
micro-batches), the weights ZeRO-3 gathers, and its peak (with its parts) against the chip's
capacity. A pure function of a
:class:`~modelmeter.analysis.training.TrainingResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.units import format_bytes

if TYPE_CHECKING:
    from modelmeter.analysis.device_peak import DevicePeak
    from modelmeter.analysis.training import TrainingResult

_TENSOR = ("activations", "activation gradients", "activations again")  # split_collectives'
_SCHEDULES = {"1f1b": "1F1B", "gpipe": "GPipe", "interleaved 1f1b": "interleaved 1F1B"}


def device_lines(r: TrainingResult) -> list[str]:
    """A title naming the plan, then the rows (none without a plan): model states (and their
    parts), activations, gathered weights (ZeRO-3), the peak and what it holds (the parts add
    up to it), capacity."""
    a, p, z = r.device_activations, r.device_peak, r.sharded
    if a is None or p is None or z is None:
        return []
    states = (f"weights {format_bytes(z.weights)}, gradients {format_bytes(z.gradients)}, "
              f"optimizer {format_bytes(z.optimizer)}"
              + (f", buffers {format_bytes(z.buffers)}" if z.buffers else "")
              + (f"; experts' {format_bytes(z.expert_states)} of them over "
                 f"{z.expert_data} expert data-parallel replica{'s' if z.expert_data > 1 else ''}"
                 if z.expert_states else ""))  # fmt: skip
    rows = [("model states per device", format_bytes(z.total), states),
            ("activations per device", format_bytes(a.held), _held(r))]
    g = p.gathered_units
    if g.units:
        rows.append(("gathered weights", format_bytes(g.backward),
                     f"ZeRO-3: two units' full weights at once, the one running and the one "
                     f"prefetched; the backward also the unit's full gradient: forward "
                     f"{format_bytes(g.forward)}, backward {format_bytes(g.backward)}; units "
                     f"{', '.join(g.units)}"))  # fmt: skip
    rows.append(("peak per device", format_bytes(p.bytes),
                 where_text(p.phase, p.op, p.module, p.later) + " = " + _parts(p)))
    rows += capacity_rows(r, p.bytes)
    par = r.parallel
    title = (f"one device of the plan: {plan_text(r)}ZeRO-{z.stage}"
             + (f" within groups of {z.group}" if z.group else "")
             + (f"; pipeline stage {p.stage + 1} of {par.pipeline}, the one with the largest peak"
                if par is not None and par.pipeline > 1 else ""))  # fmt: skip
    return [title, *aligned(rows)]


def capacity_rows(r: TrainingResult, peak: int) -> list[tuple[str, str, str]]:
    """The chip's capacity and whether ``peak`` bytes fit in it (no row without a chip)."""
    if r.time is None or r.time.capacity is None:
        return []
    cap = r.time.capacity
    verdict = (f"fits, {format_bytes(cap - peak)} to spare" if peak <= cap
               else f"does NOT fit: {format_bytes(peak - cap)} over")  # fmt: skip
    return [(f"capacity ({r.time.chip})", format_bytes(cap), verdict)]


def aligned(rows: list[tuple[str, str, str]], head: tuple[str, str, str] | None = None) -> list[str]:
    """The rows as text: the first column left-aligned, the second right-aligned, each as
    wide as its widest row (``head``, a line above them, does not widen them)."""
    w0 = max(len(x) for x, _, _ in rows)
    w1 = max(len(y) for _, y, _ in rows)
    return [f"{x:<{w0}}  {y:>{w1}}  {c}".rstrip() for x, y, c in ([head] if head else []) + rows]


def plan_text(r: TrainingResult) -> str:
    """The devices and how they split: "64 devices = data 8 x tensor 4 x pipeline 2, "."""
    z, p = r.sharded, r.parallel
    if p is None:
        return f"{z.devices} devices, " if z is not None else ""
    return (f"{p.data * p.model_parallel} devices = data {p.data} x tensor {p.tensor} x "
            f"pipeline {p.pipeline}, "
            + (f"expert {p.expert} (each MoE layer's experts over {p.expert} of the {p.data} "
               "data replicas), " if p.expert > 1 else ""))  # fmt: skip


def tensor_traffic(r: TrainingResult) -> list[str]:
    """One line: the tensor-parallel collectives of one layer and one micro-batch (each row of
    the block runs 2 per layer of the stage per micro-batch)."""
    c, par = r.communication, r.parallel
    if c is None or par is None or par.tensor < 2:
        return []
    rows = [x for x in c.collectives if x.group == par.tensor and x.what in _TENSOR
            and x.kind != "send/recv" and x.count]  # fmt: skip
    if not rows:
        return []
    sent = sum(2 * x.sent / x.count for x in rows)
    kinds = ", ".join(f"{x.kind} of {x.what} ({x.phase}) x2" for x in rows)
    return [f"  per layer and micro-batch over the {par.tensor} tensor devices: {kinds}; "
            f"{format_bytes(sent)} sent per device"]


def where_text(phase: str, op: str, module: str, later: bool) -> str:
    """Where a peak falls: the phase, the op and its module (and whether a later
    micro-batch)."""
    out = f"{phase}, {op} in module {module or '<root>'}"
    return out + (", a later micro-batch" if later else "")


def _parts(p: DevicePeak) -> str:
    """What the peak holds: its parts, which add up to it."""
    parts = [f"weights, buffers and optimizer {format_bytes(p.states)}",
             f"gradients {format_bytes(p.gradients)}"]
    if p.gathered_units.units:
        parts.append(f"gathered weights {format_bytes(p.gathered)}")
    parts.append(f"activations and temporaries {format_bytes(p.other)}")
    return " + ".join(parts)


def _held(r: TrainingResult) -> str:
    """What the activations row holds: the split, the stage and its micro-batches in flight."""
    a, par = r.device_activations, r.parallel
    whole = r.categories["activations"]
    parts = []
    if a.tensor > 1:
        share = a.split / whole if whole else 0.0
        parts.append(f"tensor {a.tensor} splits {share:.0%} of them"
                     + (", sequence parallel the rest" if a.sequence_parallel else ""))
    if par is not None and par.pipeline > 1:
        k = f"{a.in_flight:.3g}"
        parts.append(f"stage {a.stage + 1} of {par.pipeline} holds {k} micro-batch"
                     f"{'' if a.in_flight == 1 else 'es'} of its layers "
                     f"({_SCHEDULES.get(a.schedule, a.schedule)})")
    return "; ".join(parts) or "one micro-batch, whole"


__all__ = ["device_lines", "plan_text", "tensor_traffic"]
