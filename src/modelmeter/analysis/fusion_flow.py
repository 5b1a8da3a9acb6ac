"""The data flow the fusion rules follow, from the storage ids an OpRecord carries (``reads``:
one per input, 0 for a weight; ``writes``: one per output; the builder fills them from the
trace's ``TensorMeta.sid``, a Report loaded from JSON has none).

* :func:`reads_output`: whether an op reads, whole, a tensor another op wrote: one of its
  inputs has a storage the other op writes and the bytes of that output (a view of part of
  it, a slice, shares the storage but not the size). Views share their base's storage, so
  a read through a view (``reshape``, ``transpose``: no record of their own) is found; an
  in-place op (``relu_``) writes the storage it reads, and its output is that storage's
  new contents.
* :class:`Flow`: whether what an op of a kernel wrote is read, in the same phase, by an op
  after the kernel before that storage is written again whole (an in-place op, or a writer
  of at least as many bytes, replaces it; a smaller write, a slice's ``copy_``, does not):
  such an intermediate must reach memory although the kernel also uses it on chip (the
  residual stream a norm reads; a squeeze-and-excitation's activation). Reads in another
  phase do not count: a training compiler's partitioner recomputes a fused chain's
  pointwise intermediates in the backward pass rather than saving them, and a kernel never
  spans phases.

Every test answers None (or False) where a record has no ids, so the rules then fall back
to their byte-size tests, and a Report without ids fuses as before.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from modelmeter.costs import OpRecord


def has_ids(rec: OpRecord) -> bool:
    """Whether ``rec`` carries storage ids (built from a trace, not loaded from JSON)."""
    return any(rec.writes)


def reads_output(rec: OpRecord, src: OpRecord, size: int, sizes: Sequence[int],
                 main: bool = False) -> bool | None:
    """Whether ``rec`` (its inputs' bytes: ``sizes``) reads whole an output of ``src`` of
    ``size`` bytes, by storage id; None where either record has no ids. ``main``: as its
    first input or one of its largest (``residual + x``, ``weight * x``; not the mean that
    ``x - mean`` broadcasts)."""
    if not (has_ids(rec) and has_ids(src)):
        return None
    out = {s for s in src.writes if s}
    top = max(sizes, default=0)
    return any(s in out and n == size and (not main or i == 0 or n == top)
               for i, (s, n) in enumerate(zip(rec.reads, sizes, strict=False)))


def reads_any(rec: OpRecord, sids: set[int], size: int, sizes: Sequence[int]) -> bool:
    """Whether ``rec`` reads whole (an input of ``size`` bytes) one of the storages ``sids``."""
    return any(s in sids and n == size for s, n in zip(rec.reads, sizes, strict=False))


class Flow:
    """Who touches each storage, in run order: answers whether an op's output is read after
    a kernel (module docstring)."""

    def __init__(self, recs: Sequence[OpRecord]) -> None:
        self.recs = recs
        self.touch: dict[int, list[int]] = {}  # storage id -> ops reading or writing it
        for i, r in enumerate(recs):
            for s in {*r.reads, *r.writes} - {0}:
                self.touch.setdefault(s, []).append(i)

    def read_after(self, j: int, end: int) -> bool:
        """Whether an op after ``end`` (the last op of ``j``'s kernel), in ``j``'s phase,
        reads what op ``j`` wrote before it is written again whole."""
        rj = self.recs[j]
        for s in {*rj.writes} - {0}:
            ops = self.touch[s]
            for i in ops[bisect_right(ops, j):]:
                r = self.recs[i]
                if r.phase != rj.phase:
                    continue
                if i > end and s in r.reads:
                    return True
                if s in r.writes and r.cost.bytes_written >= rj.cost.bytes_written:
                    break  # overwritten whole: later readers read that
        return False


__all__ = ["Flow", "has_ids", "reads_any", "reads_output"]
