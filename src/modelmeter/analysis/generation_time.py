"""Generation on a chip: time to first token, per-token latency, end-to-end time and tokens
per second, from the roofline (:func:`modelmeter.analysis.roofline.roofline`).

The prefill is one Report: its roofline latency is the TTFT. A decode step's roofline time
at context ``c`` is a sum over ops of ``max(compute, memory)`` plus overheads, each op's counts
linear in ``c`` between sliding-window breaks. The decode total over ``c = P .. P+G-1`` is
exact (:mod:`modelmeter.analysis.generation_sum`): the roofline is evaluated at ``samples``
contexts spread evenly from the first to the last plus both sides of each break, then on
each gap where an op changes bound (or the GPU's launch queue starts or stops waiting for
it) at the integer contexts that bisect it; between two contexts with the same bounds the
step time is affine in ``c`` and summed in closed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmeter.analysis.generation import OpCurves, samples
from modelmeter.analysis.generation_host import HostTime
from modelmeter.analysis.generation_sum import ExactSum, exact_sum
from modelmeter.analysis.roofline import Roofline, roofline
from modelmeter.analysis.roofline_times import ModuleTime
from modelmeter.analysis.roofline_total import StepTime, step_time
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.report import Report


def bound(total: ModuleTime) -> str:
    """The bound under which most of the time is spent."""
    split = {
        "compute": total.compute_bound_s,
        "memory": total.memory_bound_s,
        "overhead": total.overhead_bound_s,
    }
    return max(split.items(), key=lambda kv: kv[1])[0]


@dataclass(frozen=True)
class GenerationTiming:
    chip: str
    batch: int
    new: int
    ttft_s: float
    prefill_bound: str
    decode_first_s: float
    decode_last_s: float
    decode_total_s: float
    decode_first_bound: str
    decode_last_bound: str
    evaluated: tuple[int, ...] = ()  # the contexts the roofline was evaluated at
    times: tuple[float, ...] = ()  # a decode step's roofline time at each of them
    notes: tuple[str, ...] = field(default_factory=tuple)
    figures: str = "datasheet"  # the chip figures priced: attainable, datasheet or ideal
    runtime: str = "eager"  # the host's per-op issue time (eager, graphs, ort)

    @property
    def decode_mean_s(self) -> float:
        return self.decode_total_s / self.new

    @property
    def end_to_end_s(self) -> float:
        return self.ttft_s + self.decode_total_s

    @property
    def tokens_per_s(self) -> float:
        """New tokens of the whole batch per second of the whole generation."""
        return self.batch * self.new / self.end_to_end_s if self.end_to_end_s else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """New tokens of the whole batch per second of decoding."""
        return self.batch * self.new / self.decode_total_s if self.decode_total_s else 0.0

    @property
    def exact(self) -> bool:
        """Whether the decode total is exact (it is: summed in closed form, see the module)."""
        return True

    @property
    def every_context(self) -> bool:
        return len(self.evaluated) == self.new

    def to_dict(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "figures": self.figures,
            "runtime": self.runtime,
            "ttft_s": self.ttft_s,
            "prefill_bound": self.prefill_bound,
            "per_token_s": {"first": self.decode_first_s, "mean": self.decode_mean_s,
                            "last": self.decode_last_s},  # fmt: skip
            "decode_bound": {"first": self.decode_first_bound, "last": self.decode_last_bound},
            "decode_total_s": self.decode_total_s,
            "end_to_end_s": self.end_to_end_s,
            "tokens_per_s": self.tokens_per_s,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "contexts_evaluated": len(self.evaluated),
            "every_context_evaluated": self.every_context,
            "decode_total_exact": self.exact,
            "notes": list(self.notes),
        }


def generation_timing(
    prefill: Report,
    curves: OpCurves,
    spec: HardwareSpec,
    *,
    batch: int,
    prompt: int,
    new: int,
    breaks: Sequence[int] = (),
    most: int = 17,
    options: dict[str, Any] | None = None,
) -> GenerationTiming:
    """The timing of a generation (see the module docstring); ``options``: the roofline's
    keyword arguments (``tf32``, ``ideal``, ``runtime``)."""
    options = options or {}
    pre = roofline(prefill, spec, **options)
    lo, hi = prompt, prompt + new - 1
    ends: dict[int, ModuleTime] = {}
    summed = decode_sum(curves, spec, lo, hi, breaks, most, options, ends)
    xs = sorted(summed.seen)
    times = [summed.seen[c][0] for c in xs]
    totals = [ends[lo], ends[hi]]
    notes = list(dict.fromkeys(pre.notes))
    host = HostTime.of(spec, options.get("runtime", "eager"))
    if host:
        notes.append(host.note())
    return GenerationTiming(
        chip=spec.name,
        batch=batch,
        new=new,
        ttft_s=pre.latency_s + host.step_s,
        prefill_bound=bound(pre.total),
        decode_first_s=times[0],
        decode_last_s=times[-1],
        decode_total_s=summed.total,
        decode_first_bound=bound(totals[0]),
        decode_last_bound=bound(totals[-1]),
        evaluated=tuple(xs),  # every context the roofline was evaluated at
        times=tuple(times),
        notes=tuple(notes),
        figures=pre.figures,
        runtime=pre.runtime,
    )


def decode_sum(
    curves: OpCurves,
    spec: HardwareSpec,
    lo: int,
    hi: int,
    breaks: Sequence[int] = (),
    most: int = 17,
    options: dict[str, Any] | None = None,
    ends: dict[int, ModuleTime] | None = None,
) -> ExactSum:
    """The decode steps' roofline times on contexts ``lo .. hi`` summed exactly (the module
    docstring), with the contexts evaluated, plus the chip's eager host time per step
    (:class:`HostTime`). The op times of the decode records that stay the same objects from
    context to context are reused (the roofline's ``memo``); the contexts are priced for
    their latency alone (:func:`step_time`, equal to the roofline's float for float) except,
    when ``ends`` is given, ``lo`` and ``hi``: full rooflines whose totals go into ``ends``
    (their bounds)."""
    options = options or {}
    memo: dict = {}
    full = (lo, hi) if ends is not None else ()

    def evaluate(c: int) -> Roofline | StepTime:
        if c in full and ends is not None:
            r = roofline(curves.report_at(c), spec, memo=memo, **options)
            ends[c] = r.total
            return r
        return step_time(curves.report_at(c), spec, memo=memo, **options)

    summed = exact_sum(evaluate, samples(lo, hi, breaks, most), curves.nondecreasing)
    host = HostTime.of(spec, options.get("runtime", "eager"))
    if host:  # a constant per step: added to every step
        summed.seen = {c: (t + host.step_s, sig) for c, (t, sig) in summed.seen.items()}
        summed.total += host.step_s * (hi - lo + 1)
    return summed


__all__ = ["GenerationTiming", "generation_timing", "decode_sum", "bound"]
