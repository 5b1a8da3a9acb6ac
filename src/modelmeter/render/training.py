"""A training step (``modelmeter train``) as aligned text or JSON: a pure function of a
:class:`~modelmeter.analysis.training.TrainingResult`.

The text has three blocks: the setup; memory by category (the model states add up to their
total; inputs and activations are one micro-batch's) with the step's peak against the chip's
capacity (with a plan over devices, one device of the plan first, against the capacity, then
the trace: one device holding everything); the cost per phase (the phases add up to the
step), with a chip its time per phase, throughput and MFU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render.communication import communication_lines
from modelmeter.render.formats import TRAINING_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps
from modelmeter.render.training_device import (
    aligned,
    capacity_rows,
    device_lines,
    tensor_traffic,
    where_text,
)
from modelmeter.units import (
    SHORT_DTYPE,
    format_bytes,
    format_count,
    format_params,
    format_peak,
    format_seconds,
)

if TYPE_CHECKING:
    from modelmeter.analysis.training import TrainingResult

_OPTIMIZER_NAMES = {"sgd": "SGD (momentum)", "adam": "Adam", "adamw": "AdamW",
                    "adafactor": "Adafactor", "adam8bit": "Adam 8-bit (bitsandbytes)",
                    "adamw8bit": "AdamW 8-bit (bitsandbytes)"}  # fmt: skip
STATES = ("weights", "buffers", "master weights", "gradients", "optimizer states")


def render_training(result: TrainingResult, fmt: str = "table") -> str:
    """The step in one of ``TRAINING_FORMATS``: ``table`` (aligned text) or ``json``
    (``TrainingResult.to_dict()``, schema ``modelmeter.training/1``)."""
    if fmt == "json":
        return dumps(result.to_dict())
    if fmt != "table":
        raise unknown_format(fmt, TRAINING_FORMATS)
    comm = [] if result.communication is None else ["", *communication_lines(result.communication),
                                                    *tensor_traffic(result)]
    return "\n".join([*_setup(result), "", *_memory(result), "", *_phases(result), *comm,
                      *_step(result), *_notes(result)]) + "\n"  # fmt: skip


def _setup(r: TrainingResult) -> list[str]:
    s = r.setup
    params, trainable = r.params
    size = f"{r.samples} samples" if r.samples is not None else "-"
    if r.tokens is not None:
        size = f"{r.samples} x {r.tokens // max(r.samples or 1, 1)} = {r.tokens:,} tokens"
    micro = "1 micro-batch" if r.accumulate == 1 else f"{r.accumulate} micro-batches accumulated"
    rows = [
        ("model", r.report.model),
        ("optimizer", f"{_OPTIMIZER_NAMES[s.optimizer]}, {r.variant}"),
        ("precision", s.precision + (", activation checkpointing" if s.checkpointing else "")),
        ("batch", f"{size} per micro-batch, {micro}"),
        ("parameters", f"{format_params(params)} ({format_params(trainable)} trainable)"),
    ]
    if r.max_batch is not None and r.time is not None:
        found = (f"{r.max_batch} (the step below)" if r.max_batch else
                 "none: not even a micro-batch of 1 (the step below)")  # fmt: skip
        rows.append(("largest batch", f"{found} fits {r.time.chip}"))
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]


def _memory(r: TrainingResult) -> list[str]:
    """Memory: with a plan (``sharded`` set), one device of it first (its rows decide whether
    the step fits), then the trace, one device holding everything; without, the trace."""
    trace = _trace(r, capacity=r.sharded is None)
    device = device_lines(r)
    if not device:
        return trace
    return [*device, "", "one device holding everything (the trace):", *trace]


def _trace(r: TrainingResult, capacity: bool) -> list[str]:
    """The traced step's memory by category, its peak and (``capacity``) the chip's."""
    cats = r.categories
    half = SHORT_DTYPE.get(r.setup.model_dtype, r.setup.model_dtype)
    labels = {"weights": f"weights ({half})", "gradients": f"gradients ({half})",
              "master weights": "master weights (fp32)"}  # fmt: skip
    n = max(r.params[1], 1)
    rows: list[tuple[str, str, str]] = []
    for key in STATES:
        if cats[key] or key in ("weights", "gradients"):
            rows.append((labels.get(key, key), format_bytes(cats[key]), f"{cats[key] / n:.2f}"))
    rows.append(("model states", format_bytes(r.model_states), f"{r.bytes_per_trainable:.2f}"))
    rows.append(("inputs", format_bytes(cats["inputs"]), ""))
    rows.append(("activations (saved)", format_bytes(cats["activations"]), ""))
    p = r.peak
    rows.append(("peak of the step", format_bytes(p.bytes),
                 where_text(p.phase, p.op, p.module, p.later)))  # fmt: skip
    if capacity:
        rows += capacity_rows(r, p.bytes)
    lines = aligned(rows, ("memory", "bytes", "per trainable parameter / when"))
    if r.memory.states:
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in r.memory.states.items())
        lines.append(f"  optimizer states: {parts}")
    return lines


def _phases(r: TrainingResult) -> list[str]:
    k = r.accumulate
    names = {"forward": f"forward x{k}", "backward": f"backward x{k}",
             "recompute": f"recompute x{k}", "optimizer": "optimizer"}  # fmt: skip
    timed = r.time is not None
    head = ["phase", "MACs", "FLOPs", "bytes read", "bytes written"] + (["time"] if timed else [])
    table = [head]
    for phase, c in [*r.phases.items(), ("step", r.total)]:
        row = [names.get(phase, phase), format_count(c.macs), format_count(c.flops),
               format_bytes(c.bytes_read), format_bytes(c.bytes_written)]  # fmt: skip
        if r.time is not None:
            t = r.time.compute_s if phase == "step" else r.time.phases[phase]
            row.append(format_seconds(t))
        table.append(row)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in table]  # fmt: skip
    return lines


def _step(r: TrainingResult) -> list[str]:
    """The step's time (compute, and the communication it waits for), throughput and MFU."""
    if r.time is None:
        return []
    t, unit, tp, mfu = r.time, "tokens/s" if r.tokens is not None else "samples/s", r.throughput, r.mfu
    lines = [
        f"step {format_seconds(t.step_s)} on {t.chip}: "
        f"{'-' if tp is None else f'{tp:,.0f}'} {unit}"
        f"{' per device' if r.communication is not None else ''}, MFU "
        f"{'-' if mfu is None else f'{100 * mfu:.1f}%'} (forward and backward FLOPs over "
        f"{format_peak(t.peak_flops, t.dtype)} {t.dtype})"
    ]
    c = r.communication
    if c is not None:
        hidden = ("none overlapped: added to the compute" if c.overlap == "none" else
                  "full overlap: only what the compute cannot hide is added")  # fmt: skip
        split = "" if r.parallel is None else (
            f" (one device's 1/{t.model_parallel} of the step's work)")
        bubble = "" if not t.bubble_s else (
            f" + pipeline bubble {format_seconds(t.bubble_s)} ("
            f"{'(p-1)/(v·m+p-1)' if r.parallel.virtual > 1 else '(p-1)/(m+p-1)'} = "
            f"{r.parallel.bubble:.1%} of compute and bubble)")  # fmt: skip
        lines.append(f"  = compute {format_seconds(t.compute_s)}{split}{bubble} + "
                     f"communication {format_seconds(t.communication_s)} ({hidden}; "
                     "--overlap)")  # fmt: skip
    return lines


def _notes(r: TrainingResult) -> list[str]:
    return ["", *(f"note: {n}" for n in r.notes)] if r.notes else []
