"""One device's saved activations and peak under a planned step (``TrainingResult`` with its
``sharded`` model states and ``parallel`` plan set): ``activation_split`` and ``device_peak``
applied to the traced figures. Pure arithmetic."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from modelmeter.analysis.activation_split import device_activations, places_of
from modelmeter.analysis.device_peak import DeviceShares, device_peak

if TYPE_CHECKING:
    from modelmeter.analysis.training import TrainingResult


def with_device_memory(result: TrainingResult) -> TrainingResult:
    """``result`` with ``device_activations`` and ``device_peak`` for its plan (one device of
    plain data parallelism when ``parallel`` is None)."""
    z, par, m = result.sharded, result.parallel, result.memory
    if z is None:
        return result
    places = places_of(result.report, m)
    if par is None:
        act = device_activations(places)
    else:
        act = device_activations(places, par.tensor, par.pipeline, par.micro_batches,
                                 virtual=par.virtual, schedule=par.schedule,
                                 sequence_parallel=par.sequence_parallel)  # fmt: skip
    whole_opt = m.master + sum(m.states.values())
    shares = DeviceShares(
        static=z.weights + z.buffers + z.optimizer,
        gradients=z.gradients,
        activations=act.micro_batch / m.activations if m.activations else 1.0,
        optimizer=z.optimizer / whole_opt if whole_opt else 1.0,
        held_extra=act.held - act.micro_batch,
    )
    peak = device_peak(result.report, m, result.accumulate, shares)
    return replace(result, device_activations=act, device_peak=peak)


__all__ = ["with_device_memory"]
