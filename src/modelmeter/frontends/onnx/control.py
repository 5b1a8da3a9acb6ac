"""Control flow in an ONNX walk (If, Loop, Scan): the body is walked once and its events
repeated per iteration, where the number of iterations is known when the model is loaded (a
constant condition, a constant trip count, a known sequence length); otherwise the node is
noted as not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelmeter.errors import InputError
from modelmeter.events import OpEvent
from modelmeter.frontends.onnx.load import dtype_name
from modelmeter.frontends.onnx.values import Val
from modelmeter.registry import OpCall

# The report holds one record per op call, so repeating a body costs time and memory per
# iteration (about 30 us and 3 KB per record with JSON output). Bodies of Loop and Scan are
# walked once; their events are repeated while the whole walk repeats at most this many
# events in all (nested loops multiply). A node that would pass it is not counted (noted).
MAX_REPEATED_EVENTS = 100_000
MAX_LOOP_EVENTS = MAX_REPEATED_EVENTS  # the name older callers import
REQUIRED = {"If": ("then_branch", "else_branch"), "Loop": ("body",),
            "Scan": ("body", "num_scan_inputs")}

# What walking one control-flow node found: the body's events (walked once), how many times
# they run, and why the node is not counted ("" when it is).
Walked = tuple[list[OpEvent], int, str]


class ControlFlow:
    """The walker's control-flow nodes (a mixin of :class:`.walk.Walker`, whose state it
    uses: ``events``, ``env``, ``consts``, ``types``, ``notes``, the byte counters)."""

    events: list[OpEvent]
    env: dict[str, Val]
    consts: Any
    types: Any
    notes: list[str]
    convention: str
    allocated: int
    step: int
    step_extra: dict[int, int]
    _body_depth: int
    _body_bytes: int
    repeated: int
    new_sid: Callable[[], int]
    define: Callable[..., Val]
    allocate: Callable[[Val], None]
    node: Callable[..., list[OpEvent]]

    def control(self, node: Any, scope: str, target: str, ins: list[Val | None]) -> list[OpEvent]:
        attrs = {a.name: a for a in node.attribute}
        name = node.name or target
        missing = [a for a in REQUIRED[node.op_type] if a not in attrs]
        if missing:
            raise InputError(
                f"{node.op_type} node {name!r} has no {' or '.join(map(repr, missing))} "
                "attribute (invalid graph)"
            )
        walk = {"If": self._walk_if, "Loop": self._walk_loop, "Scan": self._walk_scan}
        saved_bytes, saved_repeated = self._body_bytes, self.repeated
        start = len(self.events)
        self._body_bytes = 0
        self._body_depth += 1
        try:
            body_events, trips, reason = walk[node.op_type](node, attrs, name, scope, ins)
        except InputError as e:
            body_events, trips, reason = [], 0, f"its body could not be counted ({e})"
            del self.events[start:]
        finally:
            self._body_depth -= 1
            per_iteration, self._body_bytes = self._body_bytes, saved_bytes
        if not reason and trips > 1:
            reason = self._over_budget(node, name, len(self.events) - start, trips)
        if reason or trips == 0:  # the body's events (nested repeats included) are dropped
            del self.events[start:]
            self.repeated = saved_repeated
            trips = 0 if reason else trips
        if self._body_depth:
            self._body_bytes += per_iteration * trips
        else:
            self.allocated += per_iteration * trips
            self.step_extra[self.step] = per_iteration
        for out in node.output:
            if out:
                self.allocate(self.define(out, sid=self.new_sid()))
        if reason:
            self.notes.append(f"{node.op_type} {name!r} not counted: {reason}")
            ev = OpEvent(scope, "onnx", target, OpCall(target, {}, (), (), self.convention))
            self.events.append(ev)
            return [ev]
        if node.op_type == "Loop":
            self.notes.append(
                f"Loop {name!r}: body counted {trips} times (its static trip "
                "count; an upper bound if its condition ends it earlier)"
            )
        if body_events:  # (an empty body runs any number of times at no cost)
            self.repeated += len(body_events) * (trips - 1)
            for _ in range(trips - 1):
                self.events.extend(body_events)
        return body_events

    def _over_budget(self, node: Any, name: str, per_trip: int, trips: int) -> str:
        """Why repeating ``per_trip`` events ``trips`` times passes the walk's bound ("" when
        it does not)."""
        total = per_trip * trips
        if self.repeated + total - per_trip <= MAX_REPEATED_EVENTS:
            return ""
        return (
            f"its body ({per_trip} op event(s), nested loops included) would run {trips} "
            f"times, {_approx(total)} op events; modelmeter repeats at most "
            f"{MAX_REPEATED_EVENTS:,} op events per model, one report record each (a while "
            "loop that its condition ends?)"
        )

    def _walk_if(self, node: Any, attrs: dict[str, Any], name: str, scope: str,
                 ins: list[Val | None]) -> Walked:
        """The branch a constant condition takes, once."""
        cond = self.consts.get(node.input[0]) if node.input else None
        if cond is None or cond.size != 1:
            return [], 0, "its condition depends on the data"
        branch = attrs["then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"]
        return self.body(branch.g, scope, []), 1, ""

    def _walk_loop(self, node: Any, attrs: dict[str, Any], name: str, scope: str,
                   ins: list[Val | None]) -> Walked:
        """The body, its constant trip count times (see :data:`MAX_REPEATED_EVENTS`)."""
        m = self.consts.get(node.input[0]) if node.input and node.input[0] else None
        if m is None or m.size != 1:
            return [], 0, "its trip count is not a constant"
        trips = max(0, int(m.reshape(-1)[0]))
        body_events = self.body(attrs["body"].g, scope, [None, None, *ins[2:]])
        return body_events, trips, ""  # control() refuses it, naming the bound
        self.notes.append(
            f"Loop {name!r}: body counted {trips} times (its static trip "
            "count; an upper bound if its condition ends it earlier)"
        )
        return body_events, trips, ""

    def _walk_scan(self, node: Any, attrs: dict[str, Any], name: str, scope: str,
                   ins: list[Val | None]) -> Walked:
        """The body, once per element of the scanned sequence (its length known)."""
        n_scan = int(attrs["num_scan_inputs"].i)
        n_state = len(node.input) - n_scan
        if not 0 < n_scan <= len(node.input):
            raise InputError(
                f"Scan node {name!r} has num_scan_inputs {n_scan} but "
                f"{len(node.input)} inputs (invalid graph)"
            )
        axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else []
        first = ins[n_state]
        axis = axes[0] if axes else 0
        if first is None or not first.complete or not first.dims:
            return [], 0, "its sequence length is unknown"
        trips = int(first.dims[axis % len(first.dims)])
        body = attrs["body"].g
        return self.body(body, scope, [*ins[:n_state], *([None] * n_scan)]), trips, ""

    def body(self, graph: Any, scope: str, bound: list[Val | None]) -> list[OpEvent]:
        """Walk a subgraph once (its events appended once); ``bound`` gives the values of its
        formal inputs where known (None: a fresh value of the declared type)."""
        for t in graph.initializer:
            sid = self.new_sid()
            self.env[t.name] = Val(
                tuple(int(d) for d in t.dims), dtype_name(t.data_type), sid, const=True
            )
        for i, vi in enumerate(graph.input):
            src = bound[i] if i < len(bound) else None
            if src is not None:
                self.env[vi.name] = Val(
                    self.types.dims.get(vi.name, src.dims) or src.dims, src.dtype, src.sid,
                    src.weight, src.const,
                )
            else:
                self.define(vi.name, sid=self.new_sid())
        start = len(self.events)
        for node in graph.node:
            self.node(node, scope)
        return self.events[start:]


def _approx(n: int) -> str:
    """``n`` in a few digits: 1234 -> "1,234", 10**12 -> "1e+12"."""
    return f"{n:,}" if n < 10**7 else f"{float(n):.3g}" if n < 10**300 else "more than 1e300"


def implicit_inputs(node: Any) -> set[str]:
    """Outer values the subgraphs of a node read (names no subgraph node or input defines)."""
    names: set[str] = set()
    for a in node.attribute:
        graphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
        for g in graphs:
            defined = {vi.name for vi in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                defined.update(o for o in n.output if o)
            for n in g.node:
                names.update(i for i in n.input if i and i not in defined)
                names.update(implicit_inputs(n) - defined)
    return names


__all__ = ["MAX_LOOP_EVENTS", "MAX_REPEATED_EVENTS", "ControlFlow", "implicit_inputs"]
