"""What changed between two reports: the totals, each module (matched by name: added, removed,
changed, unchanged) and each operator type. Pure: a function of two Reports (and, for latency,
their roofline times); ``render.diff`` shows it and ``analysis.budgets`` checks it.

Every figure is a :class:`Delta` (old, new), summable: the operator rows' deltas add up to the
totals' (MACs, FLOPs, bytes). A module row's figures are its subtree's (as the module table's
are), so a changed leaf also changes its parents; the root is the totals and has no row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.deltas import ROW_FIGURES, Delta, Figures, Number, RowDiff
from modelmeter.errors import ReportFormatError
from modelmeter.report import InputSpec, ModuleNode, Report

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

SCHEMA = "modelmeter.diff/1"
# The metrics of the totals, as budgets name them.
METRICS = (
    "params", "macs", "flops", "bytes", "bytes_read", "bytes_written", "activation_peak",
    "weights", "latency",
)  # fmt: skip
STATUSES = ("added", "removed", "changed", "unchanged")


@dataclass(frozen=True, slots=True)
class Totals:
    """The whole model's figures before and after (the metrics budgets name)."""

    params: Delta
    macs: Delta
    flops: Delta
    bytes: Delta
    bytes_read: Delta
    bytes_written: Delta
    activation_peak: Delta
    weights: Delta
    latency: Delta

    def get(self, metric: str) -> Delta:
        return getattr(self, metric)

    def to_dict(self) -> dict[str, Any]:
        return {m: self.get(m).to_dict() for m in METRICS}


@dataclass(frozen=True, slots=True)
class Latencies:
    """Roofline latency of a report on one chip: the model's and each module's subtree's."""

    chip: str
    total_s: float
    modules: Mapping[str, float]

    @classmethod
    def from_roofline(cls, roofline: Roofline) -> Latencies:
        mods = {name: t.latency_s for name, t in roofline.modules.items()}
        return cls(roofline.spec.name, roofline.latency_s, mods)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Latencies | None:
        """The latencies a saved JSON report holds (``analyze -f json --hardware``), None
        when it was written without a chip; ReportFormatError on a malformed entry."""
        roof, hw = doc.get("roofline"), doc.get("hardware")
        if roof is None:
            return None
        if not isinstance(roof, dict) or not isinstance(hw, dict):
            raise ReportFormatError("malformed roofline: 'roofline' and 'hardware' are objects")
        mods = {}
        for m in doc.get("modules", []):
            if isinstance(m, dict) and isinstance(m.get("roofline"), dict):
                mods[str(m.get("name"))] = _seconds(m["roofline"].get("latency_s"))
        return cls(str(hw.get("name", "?")), _seconds(roof.get("latency_s")), mods)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ReportFormatError(f"malformed roofline: latency_s {str(value)[:40]!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Side:
    """What one side is: its label, how it was counted, its inputs and the chip of its
    latency (None without one)."""

    label: str
    frontend: str
    mode: str
    convention: str
    inputs: tuple[InputSpec, ...]
    chip: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "frontend": self.frontend, "mode": self.mode,
                "convention": self.convention, "inputs": [i.to_dict() for i in self.inputs],
                "chip": self.chip}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Diff:
    """Two reports compared. ``modules`` and ``operators`` hold every row, unchanged ones too
    (renderers hide those unless asked)."""

    old: Side
    new: Side
    totals: Totals
    modules: tuple[RowDiff, ...]
    operators: tuple[RowDiff, ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing changed: no total, no module, no operator."""
        rows = (*self.modules, *self.operators)
        return not any(self.totals.get(m).changed for m in METRICS) and all(
            r.status == "unchanged" for r in rows
        )

    def counts(self, rows: Iterable[RowDiff]) -> dict[str, int]:
        """How many rows have each status."""
        out = dict.fromkeys(STATUSES, 0)
        for r in rows:
            out[r.status] += 1
        return out

    def to_dict(self, show_all: bool = False) -> dict[str, Any]:
        def rows(rs: tuple[RowDiff, ...]) -> list[dict[str, Any]]:
            return [r.to_dict() for r in rs if show_all or r.status != "unchanged"]

        return {
            "schema": SCHEMA,
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "empty": self.empty,
            "totals": self.totals.to_dict(),
            "module_counts": self.counts(self.modules),
            "modules": rows(self.modules),
            "operator_counts": self.counts(self.operators),
            "operators": rows(self.operators),
            "notes": list(self.notes),
        }


# ---- building a diff ----------------------------------------------------------------------------


def _totals(old: Report, new: Report, lat: tuple[Latencies | None, Latencies | None]) -> Totals:
    a, b = old.total(), new.total()

    def d(x: Number, y: Number) -> Delta:
        return Delta(x, y)

    both = lat[0] is not None and lat[1] is not None
    return Totals(
        params=d(a.params, b.params),
        macs=d(a.macs, b.macs),
        flops=d(a.flops, b.flops),
        bytes=d(a.bytes_moved, b.bytes_moved),
        bytes_read=d(a.bytes_read, b.bytes_read),
        bytes_written=d(a.bytes_written, b.bytes_written),
        activation_peak=d(a.peak_activation_bytes, b.peak_activation_bytes),
        weights=d(old.size_by_dtype()["native"], new.size_by_dtype()["native"]),
        latency=Delta(lat[0].total_s, lat[1].total_s) if both else Delta(),  # type: ignore[union-attr]
    )


def _named(report: Report) -> dict[str, ModuleNode]:
    """Every module but the root, by name (a repeated name gets ``#2``, ``#3`` ...)."""
    out: dict[str, ModuleNode] = {}
    for node in report.modules():
        if node is report.root:
            continue
        key, n = node.name, 1
        while key in out:
            n += 1
            key = f"{node.name} #{n}"
        out[key] = node
    return out


def _module_figures(node: ModuleNode, lat: Latencies | None) -> Figures:
    c = node.total_cost()
    latency = None if lat is None else lat.modules.get(node.name)
    return Figures(node.calls, node.total_params().params, c.macs, c.flops, c.bytes_read,
                   c.bytes_written, latency)  # fmt: skip


def _status(old: Figures | None, new: Figures | None, same_type: bool = True) -> str:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    return "unchanged" if old == new and same_type else "changed"


def _order(old_names: list[str], new_names: list[str]) -> list[str]:
    """The new report's order, each removed module placed after the module before it in the
    old report."""
    out = list(new_names)
    present = set(new_names)
    for i, name in enumerate(old_names):
        if name in present:
            continue
        at = 0
        for prev in reversed(old_names[:i]):
            if prev in out:
                at = out.index(prev) + 1
                break
        out.insert(at, name)
        present.add(name)
    return out


def _module_rows(
    old: Report, new: Report, lat: tuple[Latencies | None, Latencies | None]
) -> tuple[RowDiff, ...]:
    a, b = _named(old), _named(new)
    both = lat[0] is not None and lat[1] is not None
    la, lb = (lat[0], lat[1]) if both else (None, None)
    rows = []
    for name in _order(list(a), list(b)):
        na, nb = a.get(name), b.get(name)
        fa = None if na is None else _module_figures(na, la)
        fb = None if nb is None else _module_figures(nb, lb)
        ta, tb = (None if n is None else n.type for n in (na, nb))
        depth = (nb or na).depth  # type: ignore[union-attr]
        status = _status(fa, fb, ta == tb or None in (ta, tb))
        rows.append(RowDiff(name, status, fa, fb, ta, tb, depth))
    return tuple(rows)


def _operator_rows(old: Report, new: Report) -> tuple[RowDiff, ...]:
    def figures(report: Report) -> dict[str, Figures]:
        return {op: Figures(s.calls, 0, s.cost.macs, s.cost.flops, s.cost.bytes_read,
                            s.cost.bytes_written)  # fmt: skip
                for op, s in report.by_operator().items()}

    a, b = figures(old), figures(new)
    rows = [RowDiff(op, _status(a.get(op), b.get(op)), a.get(op), b.get(op))
            for op in sorted(set(a) | set(b))]  # fmt: skip

    def weight(r: RowDiff) -> tuple[int, int, str]:
        return (-abs(r.delta("flops").change or 0), -abs(r.delta("bytes").change or 0), r.name)

    return tuple(sorted(rows, key=weight))


def _notes(old: Side, new: Side) -> tuple[str, ...]:
    out = []
    if old.convention != new.convention:
        out.append(f"the FLOP conventions differ ({old.convention} -> {new.convention}): "
                   "FLOPs do not compare")  # fmt: skip
    if _inputs_differ(old.inputs, new.inputs):
        out.append("the inputs differ: " + " -> ".join(
            ", ".join((f"{i.name}=" if i.name else "") + "x".join(map(str, i.shape))
                      + f" {i.dtype}" for i in s.inputs) or "-"
            for s in (old, new)))  # fmt: skip
    if old.chip and new.chip and old.chip != new.chip:
        out.append(f"the latencies are on different chips ({old.chip} -> {new.chip})")
    elif (old.chip is None) != (new.chip is None):
        out.append("only one side has a latency (give --hardware to predict both)")
    return tuple(out)


def _inputs_differ(a: tuple[InputSpec, ...], b: tuple[InputSpec, ...]) -> bool:
    """Shapes or dtypes differ, or both sides name an input and the names differ (an unnamed
    positional input, as a PyTorch module takes it, matches an ONNX graph's named one)."""
    if len(a) != len(b):
        return True
    return any(tuple(x.shape) != tuple(y.shape) or x.dtype != y.dtype
               or (x.name and y.name and x.name != y.name)
               for x, y in zip(a, b))  # fmt: skip


def _side(report: Report, label: str | None, lat: Latencies | None) -> Side:
    return Side(label or report.model, report.frontend, report.mode, report.convention,
                tuple(report.inputs), None if lat is None else lat.chip)  # fmt: skip


def diff_reports(
    old: Report,
    new: Report,
    *,
    old_label: str | None = None,
    new_label: str | None = None,
    old_latency: Latencies | None = None,
    new_latency: Latencies | None = None,
) -> Diff:
    """What changed from ``old`` to ``new``. Latency is compared when both sides have one."""
    lat = (old_latency, new_latency)
    sides = (_side(old, old_label, old_latency), _side(new, new_label, new_latency))
    return Diff(
        old=sides[0],
        new=sides[1],
        totals=_totals(old, new, lat),
        modules=_module_rows(old, new, lat),
        operators=_operator_rows(old, new),
        notes=_notes(*sides),
    )


__all__ = ["SCHEMA", "METRICS", "STATUSES", "ROW_FIGURES", "Delta", "Figures", "RowDiff", "Totals",
           "Latencies", "Side", "Diff", "diff_reports"]  # fmt: skip
