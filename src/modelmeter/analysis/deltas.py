"""The values a diff is made of: a figure before and after (:class:`Delta`), one side's figures
of a row (:class:`Figures`) and a module's or operator type's row (:class:`RowDiff`). Frozen
and summable: deltas add side by side, a side missing counts as 0 where the other has it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

Number = int | float


def _plus(a: Number | None, b: Number | None) -> Number | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


@dataclass(frozen=True, slots=True)
class Delta:
    """One figure before and after; None where a side does not have it (a module only one
    report has counts as 0 there; latency without a chip is None on both)."""

    old: Number | None = None
    new: Number | None = None

    def __add__(self, other: Delta) -> Delta:
        return Delta(_plus(self.old, other.old), _plus(self.new, other.new))

    @property
    def known(self) -> bool:
        return self.old is not None or self.new is not None

    @property
    def change(self) -> Number | None:
        """new - old (a missing side is 0); None when neither side has the figure."""
        return (self.new or 0) - (self.old or 0) if self.known else None

    @property
    def relative(self) -> float | None:
        """change / old (0.0 when nothing changed); None when old is 0 or missing and the
        figure changed, or unknown."""
        change = self.change
        if change is None or (change and not self.old):
            return None
        return change / self.old if change else 0.0

    @property
    def changed(self) -> bool:
        return bool(self.change)

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "change": self.change,
                "relative": self.relative}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Figures:
    """One side's figures of a row (a module's subtree, or an operator type's calls)."""

    calls: int = 0
    params: int = 0
    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    latency_s: float | None = None

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(_plus(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ROW_FIGURES = ("calls", "params", "macs", "flops", "bytes_read", "bytes_written", "latency_s")


@dataclass(frozen=True, slots=True)
class RowDiff:
    """One module (by qualified name) or operator type (``aten.convolution``): its figures on
    each side (None on the side that does not have it)."""

    name: str
    status: str
    old: Figures | None
    new: Figures | None
    old_type: str | None = None  # modules only
    new_type: str | None = None
    depth: int = 0  # a module's depth in the tree (the new report's, else the old one's)

    def delta(self, figure: str) -> Delta:
        """``figure`` (a Figures field, or ``bytes``) before and after."""
        old = None if self.old is None else getattr(self.old, figure)
        new = None if self.new is None else getattr(self.new, figure)
        if figure == "latency_s" and (self.old is None or self.new is None):
            return Delta(old, new)
        return Delta(0 if old is None else old, 0 if new is None else new)

    @property
    def type(self) -> str:
        """``Conv2d``, or ``Conv2d -> Linear`` when the type changed (empty for operators)."""
        old, new = self.old_type or "", self.new_type or ""
        if old and new and old != new:
            return f"{old} -> {new}"
        return new or old

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "status": self.status}
        if self.old_type is not None or self.new_type is not None:
            d.update(old_type=self.old_type, new_type=self.new_type, depth=self.depth)
        d["old"] = None if self.old is None else self.old.to_dict()
        d["new"] = None if self.new is None else self.new.to_dict()
        d["change"] = {f: self.delta(f).change for f in (*ROW_FIGURES, "bytes")}
        return d
