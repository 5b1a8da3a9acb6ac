"""Eager PyTorch's host time per module call: where in the run each module call happens.

Eager PyTorch runs every ``nn.Module`` call through Python (``Module.__call__``, hooks, the
module's own ``forward``) before the ops inside it are issued; a model of many small modules
(ConvNeXt's blocks, a transformer's layers) spends host time the per-op figure does not hold.
The roofline charges ``[overhead] module_call`` (``HardwareSpec.module_call_s``) once per
module call under the eager runtime, on the host, before the first op the module runs: on a
GPU it delays the issue of that op (the launch queue, analysis/roofline.py), in series it
adds to the op's overhead.

Only the torch frontend's Reports are charged (``Report.frontend == "torch"``): an ONNX
graph's modules are its node-name scopes (``/layer1/layer1.0/conv1/Conv``), not Python
calls, and the ONNX model runs no ``nn.Module`` whatever runtime prices it.
"""

from __future__ import annotations

from dataclasses import replace

from modelmeter.analysis.roofline_times import OpTime, bound_of
from modelmeter.report import ModuleNode, Report


def calls_before(report: Report, phase: str | None = None) -> list[int]:
    """Per op of the report, in tree order (a module's own ops, then its children's, as the
    roofline lists them; ops of other phases left out), how many module calls begin just
    before it: each module's ``calls`` (the model's own call counted once) go to the first op
    of its subtree in execution order (the records' ``seq``; tree order where unknown). A
    module with no op of the phase in its subtree is not counted, nor is a container that
    was never called (``calls == 0``: an ``nn.ModuleList``, an ``nn.ModuleDict``, a holder of
    modules its parent calls one by one): its children's calls are counted, its own is none.
    A report of another frontend than torch (ONNX: its modules are name scopes) has none."""
    index: dict[int, int] = {}  # id of a record -> its place in the roofline's list
    seqs: list[int] = []
    for node in report.modules():
        for rec in node.ops:
            if phase is None or rec.phase == phase:
                index[id(rec)] = len(seqs)
                seqs.append(rec.seq)
    counts = [0] * len(seqs)
    if report.frontend != "torch":  # no Python module runs: no module call to charge
        return counts
    known = all(s >= 0 for s in seqs)

    def first(node: ModuleNode) -> int | None:
        """The place of the subtree's first op (None: it has none), counting each module."""
        places = [index[id(r)] for r in node.ops if id(r) in index]
        places += [p for p in (first(c) for c in node.children) if p is not None]
        if not places:
            return None
        head = min(places, key=lambda i: (seqs[i] if known else i, i))
        counts[head] += max(node.calls, 1) if node is report.root else node.calls
        return head

    first(report.root)
    return counts


def charge_calls(ops: list[OpTime], counts: list[int], seconds: float) -> list[OpTime]:
    """The ops (in the order of ``counts``) with ``counts[i] x seconds`` more host time each:
    module calls are issued on the host before the op, like its own issue time (the launch
    queue then overlaps what it can)."""
    out = []
    for t, n in zip(ops, counts, strict=True):
        extra = n * seconds
        if extra:
            overhead = t.overhead_s + extra
            t = replace(t, overhead_s=overhead, host_s=t.host_s + extra,
                        latency_s=t.latency_s + extra,
                        bound=bound_of(t.compute_s, t.memory_s, overhead))
        out.append(t)
    return out


__all__ = ["calls_before", "charge_calls"]
