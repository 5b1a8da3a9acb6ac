"""One device's saved activations and peak under a planned step (``TrainingResult`` with its
``sharded`` model states and ``parallel`` plan set): ``activation_split`` and ``device_peak``
(with ZeRO-3's gathered weights) applied to the traced figures. Pure arithmetic."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.activation_split import device_activations, places_of, stage_activations
from modelmeter.analysis.device_peak import (
    NONE,
    DeviceShares,
    Gathered,
    device_peak,
    timeline_rows,
)

if TYPE_CHECKING:
    from modelmeter.analysis.training import TrainingResult


def trace_facts(result: TrainingResult) -> tuple[Any, Any]:
    """What the per-device figures read of the trace (the saved activations by place, the
    timeline's rows): the same for every plan, so a sweep over devices makes them once."""
    return places_of(result.report, result.memory), timeline_rows(result.report, result.memory)


def with_device_memory(result: TrainingResult, facts: tuple[Any, Any] | None = None,
                       gathered: Gathered = NONE,
                       stages: list[tuple[Any, Gathered]] | None = None) -> TrainingResult:  # fmt: skip
    """``result`` with ``device_activations`` and ``device_peak`` for its plan (one device of
    plain data parallelism when ``parallel`` is None); ``facts``: ``trace_facts(result)``
    when already made; ``gathered``: the weights ZeRO-3 gathers
    (``device_peak.gathered_weights``); ``stages``: under pipeline parallelism each stage's
    (sharded model states, gathered weights), stage 0 first. Each stage's peak is its own
    states + its activations in flight + its gathered units + the timeline's transient; the
    result reports the stage with the largest peak, and that stage's states and activations
    (``sharded``, ``device_activations``, ``device_peak.stage``)."""
    z, par = result.sharded, result.parallel
    if z is None:
        return result
    places, rows = trace_facts(result) if facts is None else facts
    if par is None:
        acts = [device_activations(places)]
    else:
        acts = stage_activations(places, par.tensor, par.pipeline, par.micro_batches,
                                 virtual=par.virtual, schedule=par.schedule,
                                 sequence_parallel=par.sequence_parallel)  # fmt: skip
    if stages is None or len(stages) != len(acts):
        stages = [(z, gathered)] * len(acts)
    best = None
    for s, (act, (zs, gs)) in enumerate(zip(acts, stages, strict=True)):
        peak = _peak(result, zs, act, gs, rows)
        if best is None or peak.bytes > best[0].bytes:
            best = (replace(peak, stage=s), zs, act)
    peak, zs, act = best  # type: ignore[misc]
    return replace(result, sharded=zs, device_activations=act, device_peak=peak)


def _peak(result: TrainingResult, z: Any, act: Any, gathered: Gathered, rows: Any) -> Any:
    """One device's peak given its sharded states ``z``, activations ``act`` and gathered
    weights."""
    m = result.memory
    whole_opt = m.master + sum(m.states.values())
    shares = DeviceShares(
        static=z.weights + z.buffers + z.optimizer,
        gradients=z.gradients,
        activations=act.micro_batch / m.activations if m.activations else 1.0,
        optimizer=z.optimizer / whole_opt if whole_opt else 1.0,
        held_extra=act.held - act.micro_batch,
        gathered=gathered,
    )
    return device_peak(result.report, m, result.accumulate, shares, rows)


__all__ = ["trace_facts", "with_device_memory"]
