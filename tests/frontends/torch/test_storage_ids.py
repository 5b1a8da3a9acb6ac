"""A storage's identity in a trace is a serial it keeps while it lives and that no later
storage gets: the C++ storage's address (what it was before) is handed again to the next
storage allocated once this one is freed, often by an allocation the trace records no event
for (``empty_like`` below), and the tensor-parallel replay then took the new tensor for the
dead one: DeepSeek-V3's per-device activations under ``generate --tp 8`` varied from run to
run (0.72 to 0.91 GB at ``--prompt 1024``)."""

from __future__ import annotations

import torch

from modelmeter.analysis.serving_parallel import event_kinds
from modelmeter.frontends.torch.tracer import Lifetimes, OpTracer, ScopeTracker, storage_id


def test_a_freed_storage_id_is_never_given_again() -> None:
    seen = []
    for device in ("meta", "cpu"):
        for _ in range(8):
            t = torch.empty(1000, device=device)
            seen.append(storage_id(t))
            del t  # its storage is freed: the next one is allocated where it was
    # 16 storages born and freed one after the other: 16 ids (by address: 2, one a device)
    assert len(set(seen)) == 16
    assert 0 not in seen  # 0 reads as "no storage" (registry.unfused_bytes)


def test_views_and_in_place_ops_share_their_storage_id() -> None:
    a = torch.empty(4, 4, device="meta")
    sid = storage_id(a)
    view, row = a.view(16), a[1:]
    del a  # the storage lives on in its views: the same id
    assert storage_id(view) == storage_id(row) == sid
    assert storage_id(view.add_(1)) == sid
    assert storage_id(torch.empty(16, device="meta")) != sid


def test_an_untraced_allocation_does_not_inherit_a_split() -> None:
    # q = x @ w is column-parallel (w a weight): q and relu(q) are split. Both die; four
    # empty_like make storages without an event (allocations without cost), and copy_ writes
    # the whole x into each: whole. By address, some of them sat where q's or relu's storage
    # was and their copy_ was taken for a split op (4 to 12 of the 32 copies, run to run).
    w = torch.empty(8, 8, device="meta")
    x = torch.empty(4, 8, device="meta")
    weights = {storage_id(w)}
    tracer = OpTracer(ScopeTracker({}), weights, Lifetimes(weights), "exact")
    with tracer:
        for _ in range(8):
            q = x @ w
            y = q.relu()
            del q, y
            zs = [torch.empty_like(x) for _ in range(4)]
            for z in zs:
                z.copy_(x)
            del zs, z
    kinds = event_kinds(tracer.events, {""})
    assert [e.target for e in tracer.events] == ["mm", "relu", *["copy_"] * 4] * 8
    assert kinds == ["column", "split", *["whole"] * 4] * 8
