"""What one op costs and what a module owns: :class:`Cost` (MACs, FLOPs, bytes),
:class:`OpRecord` (one counted op call), :class:`OpStat` (an operator's calls summed) and
:class:`ParamStats` (parameter bookkeeping). Plain, typed and summable; the Report
(:mod:`modelmeter.report`) is built from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Cost:
    """What running some ops costs. ``bytes_read`` includes ``weight_bytes``."""

    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    weight_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.weight_bytes + other.weight_bytes,
        )

    def __radd__(self, other: object) -> Cost:
        if other == 0:  # so that sum() works
            return self
        return NotImplemented

    def __mul__(self, k: int) -> Cost:
        return Cost(*(getattr(self, f.name) * k for f in fields(self)))

    @property
    def bytes_moved(self) -> int:
        """Bytes read plus bytes written (the source document's memory access cost)."""
        return self.bytes_read + self.bytes_written

    @property
    def activation_bytes_read(self) -> int:
        return self.bytes_read - self.weight_bytes

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per byte moved (0 when nothing moves)."""
        return self.flops / self.bytes_moved if self.bytes_moved else 0.0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cost:
        return cls(**{f.name: int(d.get(f.name, 0)) for f in fields(cls)})


ZERO = Cost()


class CostShortcuts:
    """``x.macs`` for ``x.cost.macs`` (and ``flops``, ``bytes_read``, ...) on a type that holds
    one :class:`Cost`, which :meth:`_shortcut_cost` names; the ``Cost`` itself stays."""

    __slots__ = ()

    def _shortcut_cost(self) -> Cost:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        return self._shortcut_cost().macs

    @property
    def flops(self) -> int:
        return self._shortcut_cost().flops

    @property
    def bytes_read(self) -> int:
        return self._shortcut_cost().bytes_read

    @property
    def bytes_written(self) -> int:
        return self._shortcut_cost().bytes_written

    @property
    def weight_bytes(self) -> int:
        return self._shortcut_cost().weight_bytes

    @property
    def bytes_moved(self) -> int:
        return self._shortcut_cost().bytes_moved

    @property
    def arithmetic_intensity(self) -> float:
        return self._shortcut_cost().arithmetic_intensity


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One op call as counted: its key (``aten.convolution``), phase, cost and compute dtype.

    ``unit`` is set when the formula says where the op runs (``"vector"`` for a depthwise
    convolution); :attr:`runs_on` applies the default rule otherwise. ``seq`` is the op's
    place in the run (execution order across modules; -1 when unknown): serialised, so a
    saved report's roofline waits for its launches in the same order, but not compared.

    ``reads`` and ``writes`` are the storage ids (``TensorMeta.sid``) of the call's inputs,
    one per entry of ``shapes`` (0 for a weight or buffer, and where unknown), and of its
    outputs: the data flow between ops, which the fusion rules follow. Neither compared nor
    serialised (a Report loaded from JSON has none: empty tuples)."""

    op: str
    cost: Cost
    phase: str = "forward"
    dtype: str = "float32"
    shapes: tuple[tuple[int, ...], ...] = ()
    unit: str | None = None
    seq: int = field(default=-1, compare=False)
    reads: tuple[int, ...] = field(default=(), compare=False)
    writes: tuple[int, ...] = field(default=(), compare=False)

    @property
    def runs_on(self) -> str:
        """``"matrix"`` or ``"vector"``: the formula's ``unit``, else matrix iff it has MACs."""
        if self.unit:
            return self.unit
        return "matrix" if self.cost.macs > 0 else "vector"

    def to_dict(self) -> dict[str, Any]:
        d = {
            "op": self.op,
            "phase": self.phase,
            "dtype": self.dtype,
            "shapes": [list(s) for s in self.shapes],
            **self.cost.to_dict(),
        }
        if self.unit:
            d["unit"] = self.unit
        if self.seq >= 0:  # the execution order: a saved report predicts as the live one
            d["seq"] = self.seq
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpRecord:
        return cls(
            op=d["op"],
            cost=Cost.from_dict(d),
            phase=d.get("phase", "forward"),
            dtype=d.get("dtype", "float32"),
            shapes=tuple(tuple(s) for s in d.get("shapes", ())),
            unit=d.get("unit"),
            seq=_seq(d.get("seq", -1)),
        )


def _seq(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValueError(f"an op's seq {value!r} is not a whole number >= 0")
    return value


@dataclass(frozen=True, slots=True)
class OpStat:
    """Calls and summed cost of one operator key."""

    calls: int
    cost: Cost

    def __add__(self, other: OpStat) -> OpStat:
        return OpStat(self.calls + other.calls, self.cost + other.cost)


@dataclass(frozen=True, slots=True)
class ParamStats:
    """Parameter bookkeeping of one module (own) or a subtree (total)."""

    params: int = 0
    trainable: int = 0
    buffers: int = 0
    unused: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0

    def __add__(self, other: ParamStats) -> ParamStats:
        return ParamStats(
            self.params + other.params,
            self.trainable + other.trainable,
            self.buffers + other.buffers,
            self.unused + other.unused,
            self.param_bytes + other.param_bytes,
            self.buffer_bytes + other.buffer_bytes,
        )

    @property
    def frozen(self) -> int:
        return self.params - self.trainable


__all__ = ["Cost", "CostShortcuts", "ZERO", "OpRecord", "OpStat", "ParamStats"]
