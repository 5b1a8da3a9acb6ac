"""A report's roofline latency and per-op signature alone, without the per-op and per-module
rows: what a sum over many decode contexts needs (:mod:`modelmeter.analysis.generation_sum`).

:func:`step_time` prices the ops as :func:`modelmeter.analysis.roofline.roofline` does (the
same unqueued op times, the same queue waits, the same additions in the same order: each
module's own ops in tree order, then each subtree as its own time plus its children's
totals), so its ``latency_s`` equals ``roofline(...).latency_s`` exactly, float for float;
it only skips building an :class:`OpTime` per op and a :class:`ModuleTime` per module.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelmeter.analysis.roofline import priced_spec, queue_waits, unqueued_ops
from modelmeter.analysis.roofline_times import OpTime, waited_latency
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.report import ModuleNode, OpRecord, Report


@dataclass(frozen=True)
class StepTime:
    """A report's roofline latency and, per op in tree order, whether it is compute-bound
    and whether the device waited for it (the host's share of its overhead is not zero)."""

    latency_s: float
    signature: tuple[tuple[bool, bool], ...]


def step_time(
    report: Report,
    spec: HardwareSpec,
    *,
    phase: str | None = None,
    tf32: bool = False,
    ideal: bool = False,
    runtime: str = "eager",
    memo: dict[int, tuple[OpRecord, OpTime]] | None = None,
) -> StepTime:
    """``roofline(report, spec, ...)``'s latency and signature (the module docstring); the
    options and ``memo`` as there."""
    priced = priced_spec(spec, ideal, runtime)
    ops, seqs = unqueued_ops(report, priced, (phase, tf32, runtime), {}, memo)
    latency = [t.latency_s for t in ops]
    host = [t.host_s for t in ops]
    for i, wait in queue_waits(priced, ops, seqs):
        latency[i] = waited_latency(ops[i], wait)[1]
        host[i] = wait
    own: dict[str, float] = {node.name: 0.0 for node in report.modules()}
    for t, x in zip(ops, latency, strict=True):
        own[t.module] += x
    signature = tuple((t.compute_s >= t.memory_s, h > 0) for t, h in zip(ops, host, strict=True))
    return StepTime(_subtree(report.root, own), signature)


def _subtree(node: ModuleNode, own: dict[str, float]) -> float:
    """The node's own time plus its children's subtree times (``sum``, as the roofline's
    module rows add them)."""
    return sum([own[node.name], *(_subtree(c, own) for c in node.children)])


__all__ = ["StepTime", "step_time"]
