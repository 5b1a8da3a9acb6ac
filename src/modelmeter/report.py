"""Plain, typed, summable results. A Report never renders itself and imports no framework:
its notebook view is drawn by the renderer registered in ``DISPLAY`` (by the facade).

A :class:`ModuleNode` stores only its *own* cost (the ops that ran while it was the innermost
running module); totals are always computed, so nothing is counted twice.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from modelmeter.costs import ZERO, Cost, CostShortcuts, OpRecord, OpStat, ParamStats
from modelmeter.errors import ReportFormatError, first_line
from modelmeter.report_tree import (
    PHASES,
    SCHEMA,
    ModuleNode,
    assemble,
    checked_count,
    checked_list,
    checked_text,
    node_from_dict,
    node_to_dict,
    param_sizes,
)
from modelmeter.storage import Storage
from modelmeter.units import format_params, format_quantity

DISPLAY: dict[str, Callable[[Report], str]] = {}  # "html" -> Jupyter's view (modelmeter/__init__)


@dataclass(frozen=True, slots=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        return d if self.name is None else {**d, "name": self.name}


@dataclass(frozen=True, slots=True)
class Totals(CostShortcuts):
    """Whole-model figures: parameters and every op's summed cost (``.macs``: ``.cost.macs``)."""

    params: int
    trainable_params: int
    buffers: int
    unused_params: int
    cost: Cost
    activation_bytes: int
    peak_activation_bytes: int

    def _shortcut_cost(self) -> Cost:
        return self.cost

    def to_dict(self) -> dict[str, int]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "unused_params": self.unused_params,
            **self.cost.to_dict(),
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
        }


@dataclass(frozen=True, slots=True)
class ModuleRow(CostShortcuts):
    """A flattened tree row, as renderers and ``by_module`` give it (``.macs`` is
    ``.total_cost.macs``: the module with everything inside it)."""

    name: str
    type: str
    depth: int
    calls: int
    params: int
    self_cost: Cost
    total_cost: Cost
    output_shapes: list[list[int]]
    node: ModuleNode

    def _shortcut_cost(self) -> Cost:
        return self.total_cost

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "depth": self.depth, "calls": self.calls,
                "params": self.params, "output_shapes": self.output_shapes,
                "self": self.self_cost.to_dict(), "total": self.total_cost.to_dict()}  # fmt: skip


@dataclass(slots=True)
class Report:
    model: str
    frontend: str
    convention: str
    mode: str
    inputs: list[InputSpec]
    root: ModuleNode
    activation_bytes: int = 0
    peak_activation_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    storage: Storage | None = None  # the storage formats its bytes assume (None: the dtypes)
    chip: Any = field(default=None, compare=False, repr=False)  # a Roofline, for the notebook

    # ---- queries -------------------------------------------------------------------------
    def total(self, phase: str | None = None) -> Totals:
        p = self.root.total_params()
        return Totals(
            params=p.params,
            trainable_params=p.trainable,
            buffers=p.buffers,
            unused_params=p.unused,
            cost=self.root.total_cost(phase),
            activation_bytes=self.activation_bytes,
            peak_activation_bytes=self.peak_activation_bytes,
        )

    def modules(self) -> Iterator[ModuleNode]:
        return self.root.walk()

    def by_module(self, depth: int | None = None, phase: str | None = None) -> list[ModuleRow]:
        """Rows of the module tree down to ``depth`` (None: all), each with self and total cost.

        A row's ``self_cost`` is its own ops plus, where its children are cut off by
        ``depth``, nothing else: cut-off children are folded into ``total_cost`` only.
        """
        nodes = self.root.walk()
        return [_row(n, phase) for n in nodes if depth is None or n.depth <= depth]

    def __getitem__(self, name: str) -> ModuleRow:
        """The row of the module called ``name`` (``report["layer1.0.conv1"]``); KeyError
        naming the close matches otherwise."""
        for node in self.root.walk():
            if node.name == name:
                return _row(node, None)
        close = difflib.get_close_matches(str(name), [n.name for n in self.root.walk()], n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no module named {name!r} in {self.model}{hint}")

    __iter__ = None  # modules by name, not a sequence: iterate report.modules()

    def __contains__(self, name: object) -> bool:
        return any(n.name == name for n in self.root.walk())

    def __repr__(self) -> str:
        """One line: ``<Report resnet50: 25.56M params, 4.09 GMACs, ..., 1x3x224x224>``."""
        t = self.total()
        shapes = ", ".join("x".join(map(str, i.shape)) or "scalar" for i in self.inputs)
        return (
            f"<Report {self.model}: {format_params(t.params)} params, "
            f"{format_quantity(t.macs, 'MACs')}, {format_quantity(t.flops, 'FLOPs')}, "
            f"{self.frontend}/{self.mode}{', ' + shapes if shapes else ''}>"
        )

    def with_chip(self, roofline: Any) -> Report:
        """A copy whose notebook view also shows ``roofline`` (``modelmeter.roofline(report,
        spec)``): the predicted latency, bound, chart and time split."""
        return replace(self, chip=roofline)

    def _repr_html_(self) -> str:
        """Jupyter's view: the module tree, totals and, with ``chip``, the roofline."""
        return DISPLAY["html"](self)

    def by_operator(self, phase: str | None = None) -> dict[str, OpStat]:
        stats: dict[str, OpStat] = {}
        for node in self.root.walk():
            for rec in node.ops:
                if phase is not None and rec.phase != phase:
                    continue
                one = OpStat(1, rec.cost)
                stats[rec.op] = stats[rec.op] + one if rec.op in stats else one
        return dict(sorted(stats.items(), key=lambda kv: (-kv[1].cost.flops, kv[0])))

    @property
    def unsupported(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for node in self.root.walk():
            for op, n in node.unsupported.items():
                out[op] = out.get(op, 0) + n
        return dict(sorted(out.items()))

    @property
    def phases(self) -> list[str]:
        seen = {rec.phase for node in self.root.walk() for rec in node.ops}
        return [p for p in PHASES if p in seen]

    def size_by_dtype(self, node: ModuleNode | None = None) -> dict[str, int]:
        """Bytes of the parameters at each precision, plus ``native`` (their own dtypes).

        Buffers (e.g. BN running statistics) are not parameters and are not included.
        """
        return param_sizes((node or self.root).total_params())

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "frontend": self.frontend,
            "convention": self.convention,
            "mode": self.mode,
            "inputs": [i.to_dict() for i in self.inputs],
            "phases": self.phases,
            "total": self.total().to_dict(),
            "size_by_dtype": self.size_by_dtype(),
            "by_operator": {
                k: {"calls": v.calls, **v.cost.to_dict()} for k, v in self.by_operator().items()
            },
            "modules": [node_to_dict(n) for n in self.root.walk()],
            "unsupported": self.unsupported,
            "notes": list(self.notes),
            **({"storage": self.storage.to_dict()} if self.storage is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """The Report a ``to_dict()`` document describes. Anything else (not a dict, another
        schema, a missing, mistyped or negative entry) raises one ReportFormatError (an
        InputError and a ValueError) naming the first problem."""
        if not isinstance(d, dict):
            raise ReportFormatError(f"not a {SCHEMA} document: a {type(d).__name__}, not an object")
        if d.get("schema") != SCHEMA:
            raise ReportFormatError(f"not a {SCHEMA} document (schema={d.get('schema')!r})")
        try:
            return cls._from_checked(d)
        except ReportFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                RecursionError) as e:  # fmt: skip
            what = f"missing entry {e}" if isinstance(e, KeyError) else first_line(e)
            raise ReportFormatError(f"malformed {SCHEMA} document: {what}") from None

    @classmethod
    def _from_checked(cls, d: dict[str, Any]) -> Report:
        nodes = [node_from_dict(m) for m in checked_list(d["modules"], "modules")]
        root = assemble(nodes)
        total = d["total"]
        return cls(
            model=checked_text(d["model"], "model"),
            frontend=checked_text(d["frontend"], "frontend"),
            convention=checked_text(d["convention"], "convention"),
            mode=checked_text(d["mode"], "mode"),
            inputs=[
                InputSpec(
                    tuple(
                        checked_count(x, "input shape")
                        for x in checked_list(i["shape"], "input shape")
                    ),
                    checked_text(i["dtype"], "input dtype"),
                    i.get("name"),
                )
                for i in checked_list(d["inputs"], "inputs")
            ],
            root=root,
            activation_bytes=checked_count(total.get("activation_bytes", 0), "activation_bytes"),
            peak_activation_bytes=checked_count(
                total.get("peak_activation_bytes", 0), "peak_activation_bytes"
            ),
            notes=[checked_text(n, "note") for n in checked_list(d.get("notes", []), "notes")],
            storage=Storage.from_dict(d["storage"]) if d.get("storage") is not None else None,
        )


def _row(node: ModuleNode, phase: str | None) -> ModuleRow:
    n = node
    return ModuleRow(n.name, n.type, n.depth, n.calls, n.total_params().params,
                     n.self_cost(phase), n.total_cost(phase), n.output_shapes, n)  # fmt: skip


def with_notes(report: Report, *notes: str) -> Report:
    """A copy of ``report`` with notes appended."""
    return replace(report, notes=[*report.notes, *notes])


__all__ = ["SCHEMA", "PHASES", "Cost", "ZERO", "OpRecord", "OpStat", "ParamStats", "ModuleNode",
           "InputSpec", "Totals", "ModuleRow", "Report", "with_notes"]  # fmt: skip
