"""A sweep's result (plain data; ``usecases.sweep`` makes it, ``render.sweep`` shows it): one
row of totals per grid point, and the exact formulas of the totals in the swept sizes.

JSON schema ``modelmeter.sweep/1``; a formula alone is ``modelmeter.formula/1``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.polynomial import Maximum, MultiPolynomial
from modelmeter.analysis.report_formula import COUNTS, ReportFormula, totals

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.report import Report

SWEEP_SCHEMA = "modelmeter.sweep/1"
FORMULA_SCHEMA = "modelmeter.formula/1"

# the short names formulas are printed with
SHORT = {"batch": "b", "seq": "s", "size": "n"}
COUNT_LABELS = {
    "params": "Params",
    "macs": "MACs",
    "flops": "FLOPs",
    "bytes_read": "Bytes read",
    "bytes_written": "Bytes written",
    "weight_bytes": "Weight bytes",
    "activation_bytes": "Activations",
    "peak_activation_bytes": "Activation peak",
}


@dataclass(frozen=True)
class Formula:
    """Each total as an exact polynomial in ``variables`` (or why it is not one), with the
    sizes it was fitted on (``grid``) and checked at (``checked``, never fitted on)."""

    model: str
    variables: tuple[str, ...]
    counts: dict[str, MultiPolynomial | Maximum | str]
    grid: tuple[tuple[int, ...], ...]
    checked: tuple[tuple[int, ...], ...]
    traces: int
    convention: str = "exact"

    @classmethod
    def from_fit(cls, model: str, fit: ReportFormula) -> Formula:
        return cls(
            model=model,
            variables=fit.variables,
            counts=fit.counts,
            grid=tuple(fit.fit.axes),
            checked=tuple(fit.fit.checked),
            traces=fit.traces,
            convention=fit.template.convention,
        )

    def at(self, **sizes: int) -> dict[str, int | None]:
        """Every count at these sizes (None where there is no formula)."""
        return {
            name: p.at(**sizes) if isinstance(p, (MultiPolynomial, Maximum)) else None
            for name, p in self.counts.items()
        }

    def lines(self) -> list[str]:
        """``MACs = b·(6.61e9·s + 2.62e5·s²)`` per count (per batch item where the count is
        linear in the batch), or why there is none."""
        out = []
        names = {v: SHORT.get(v, v) for v in self.variables}
        for count in COUNTS:
            p = self.counts[count]
            label = COUNT_LABELS[count]
            if isinstance(p, str):
                out.append(f"{label}: no formula: {p}")
                continue
            if isinstance(p, Maximum):
                out.append(f"{label} = {p.format(names)}")
                continue
            per = p.divided_by("batch") if "batch" in self.variables else None
            if per is not None and len(self.variables) > 1:
                out.append(f"{label} = {names['batch']}·({per.format(names)})")
            else:
                out.append(f"{label} = {p.format(names)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": FORMULA_SCHEMA,
            "model": self.model,
            "convention": self.convention,
            "variables": list(self.variables),
            "counts": {
                name: {"refused": p} if isinstance(p, str) else p.to_dict()
                for name, p in self.counts.items()
            },
            "fitted_on": [list(axis) for axis in self.grid],
            "checked_at": [dict(zip(self.variables, p)) for p in self.checked],
            "traces": self.traces,
        }


@dataclass(frozen=True)
class SweepRow:
    """One grid point: its sizes, the report's totals, the latency with a chip, and whether
    the figures were traced or come from the checked formula."""

    point: dict[str, int]
    totals: dict[str, int]
    source: str  # "traced" or "formula"
    latency_s: float | None = None
    bound: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.point,
            **self.totals,
            "latency_s": self.latency_s,
            "bound": self.bound,
            "source": self.source,
        }


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep (grid order), its formula (None when not asked for or refused
    outright) and how many traces it took."""

    model: str
    variables: tuple[str, ...]
    rows: list[SweepRow]
    convention: str
    chip: str | None = None
    formula: Formula | None = None
    traces: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SWEEP_SCHEMA,
            "model": self.model,
            "convention": self.convention,
            "chip": self.chip,
            "variables": list(self.variables),
            "traces": self.traces,
            "rows": [r.to_dict() for r in self.rows],
            "formula": None if self.formula is None else self.formula.to_dict(),
            "notes": list(self.notes),
        }


def sweep_row(
    point: dict[str, int], report: Report, source: str, roofline: Roofline | None = None
) -> SweepRow:
    """The row of one grid point from its (traced or formula) Report."""
    return SweepRow(
        point=dict(point),
        totals=dict(zip(COUNTS, totals(report))),
        source=source,
        latency_s=None if roofline is None else roofline.latency_s,
        bound=None if roofline is None else roofline.total.bound,
    )


__all__ = ["FORMULA_SCHEMA", "SWEEP_SCHEMA", "Formula", "SweepResult", "SweepRow", "sweep_row"]
