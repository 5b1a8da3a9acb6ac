"""The operator registry: one decorated function per formula, named for every frontend.

A formula sees a frontend-neutral :class:`OpCall` (shapes, dtypes, attributes; never a torch
or onnx object) and returns :class:`Work`. The formulas live in ``modelmeter.ops`` and register
when it is imported (``register_op``, each declaring its family). Zero-cost ops are declared with
:func:`register_zero_cost` in one place (``ops/views.py``). Anything neither counted nor
declared zero-cost is unsupported. Registering a target twice is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from modelmeter.units import DTYPE_BYTES

CONVENTIONS = ("exact", "2mac")
FRONTENDS = ("aten", "onnx")
# The formula families: every formula declares one (``register_op(..., family=...)``). They
# are names users write: the kernel classes of hardware files' [efficiency.kernels] tables.
FAMILIES = (
    "activation",
    "attention",
    "conv",
    "detection",
    "einsum",
    "elementwise",
    "embedding",
    "fft",
    "interp",
    "matmul",
    "movement",
    "norm",
    "pool",
    "quant",
    "reduce",
    "rnn",
)


@dataclass(frozen=True, slots=True)
class TensorMeta:
    """What a formula may know of a tensor. ``sid`` identifies its storage (for dedup and
    lifetimes); ``weight`` says it is a parameter or buffer of the model; ``distinct``, when
    set, is how many distinct elements it addresses where that is fewer than ``numel``: a
    broadcast view (``expand``: stride 0) reads each stored element once, however many times
    the view repeats it, so its bytes are ``distinct`` elements' (``numel`` stays the logical
    count that FLOPs use). ``kv`` says it is (a view of) a key/value cache's storage, so
    that a KV-cache format can price it apart from the activations. ``stored``, when set, is
    its exact bytes per element in a storage format (``storage.Pricing``: int4 with its
    scales, an fp8 cache ...), which the builder sets; ``itemsize`` and ``nbytes`` use it."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    sid: int = 0
    weight: bool = False
    distinct: int | None = None
    kv: bool = False
    stored: Fraction | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def itemsize(self) -> float:
        """Bytes per element (0.5 for 4-bit types; a storage format's, exactly, if set)."""
        if self.stored is not None:
            return self.stored  # type: ignore[return-value]  # a Fraction: exact bytes
        return DTYPE_BYTES.get(self.dtype, 4)

    @property
    def nbytes(self) -> int:
        n = self.numel if self.distinct is None else self.distinct
        return math.ceil(n * self.itemsize)


@dataclass(frozen=True, slots=True)
class OpCall:
    """One call of an op: arguments by schema name (tensors as :class:`TensorMeta`, tensor
    lists as tuples of them), all tensor inputs in order, and the outputs."""

    op: str
    args: dict[str, Any]
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]
    convention: str = "exact"

    def arg(self, name: str, default: Any = None) -> Any:
        value = self.args.get(name, default)
        return default if value is None else value

    @property
    def out(self) -> TensorMeta:
        return self.outputs[0]


@dataclass(frozen=True, slots=True)
class Work:
    """What a formula returns. Byte fields left ``None`` are filled by the builder from the
    tensors (read every input once, write every output once).

    ``unit`` is where the op runs on a chip, for the roofline: ``None`` means the default
    rule (an op with MACs on the matrix units, anything else on the vector units); a formula
    sets ``"vector"`` for MAC work that is not a matrix product (a depthwise convolution)."""

    macs: int = 0
    flops: int = 0
    bytes_read: int | None = None
    bytes_written: int | None = None
    weight_bytes: int | None = None
    unit: str | None = None


FormulaFn = Callable[[OpCall], Work]


@dataclass(frozen=True)
class Formula:
    name: str
    fn: FormulaFn
    family: str
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()

    def __call__(self, call: OpCall) -> Work:
        return self.fn(call)


@dataclass(frozen=True)
class ZeroCost:
    """A declared zero-cost op (views, metadata, allocation)."""

    reason: str
    target: str


_FORMULAS: dict[str, Formula] = {}
_TARGETS: dict[tuple[str, str], Formula | ZeroCost] = {}


def _claim(frontend: str, target: str, entry: Formula | ZeroCost) -> None:
    if frontend not in FRONTENDS:
        raise ValueError(f"unknown frontend {frontend!r}")
    key = (frontend, target)
    if key in _TARGETS:
        raise ValueError(f"{frontend} op {target!r} is registered twice")
    _TARGETS[key] = entry


def register_op(
    name: str, *, family: str, aten: Iterable[str] = (), onnx: Iterable[str] = ()
) -> Callable[[FormulaFn], FormulaFn]:
    """Register ``fn`` as the formula ``name`` of ``family`` (one of :data:`FAMILIES`) for
    the given targets of each frontend."""
    if family not in FAMILIES:
        raise ValueError(f"formula {name!r}: unknown family {family!r}; use one of "
                         f"{', '.join(FAMILIES)}")

    def decorate(fn: FormulaFn) -> FormulaFn:
        if name in _FORMULAS:
            raise ValueError(f"formula {name!r} is registered twice")
        formula = Formula(name, fn, family, {"aten": tuple(aten), "onnx": tuple(onnx)})
        _FORMULAS[name] = formula
        for frontend, targets in formula.targets.items():
            for target in targets:
                _claim(frontend, target, formula)
        return fn

    return decorate


def register_zero_cost(reason: str, *, aten: Iterable[str] = (), onnx: Iterable[str] = ()) -> None:
    """Declare targets that cost nothing (views, metadata, allocations)."""
    for frontend, targets in (("aten", aten), ("onnx", onnx)):
        for target in targets:
            _claim(frontend, target, ZeroCost(reason, target))


def lookup(frontend: str, target: str) -> Formula | ZeroCost | None:
    """The formula or zero-cost declaration for a target, or None (unsupported)."""
    _registered()
    return _TARGETS.get((frontend, target))


def family_of(key: str) -> str | None:
    """The formula family of a report's operator key (``aten.convolution`` -> ``conv``,
    ``onnx.MaxPool`` -> ``pool``, ``torchvision.nms`` -> ``detection``); None when the key
    has no formula."""
    if key.startswith("onnx."):
        entry = lookup("onnx", key[5:])
    else:
        entry = lookup("aten", key[5:] if key.startswith("aten.") else key)
    return entry.family if isinstance(entry, Formula) else None


def formulas() -> list[Formula]:
    _registered()
    return sorted(_FORMULAS.values(), key=lambda f: (f.family, f.name))


def zero_cost_targets(frontend: str) -> dict[str, str]:
    _registered()
    return {
        t: e.reason
        for (fe, t), e in sorted(_TARGETS.items())
        if fe == frontend and isinstance(e, ZeroCost)
    }


def _registered() -> None:
    """Formulas register when ``modelmeter.ops`` is imported (the builder imports it, and
    ``import modelmeter`` imports the builder); the registry, below the ops, never imports
    them itself."""
    if not _FORMULAS:
        raise RuntimeError("no formulas are registered: import modelmeter.ops first")


# ---- helpers shared by formulas ----------------------------------------------------------------


def mac_work(call: OpCall, macs: int, outputs: int, bias: bool) -> Work:
    """FLOPs of a sum-of-products op under the call's convention.

    ``exact``: each output is a sum of products; n products need n multiplies and n-1 adds,
    so FLOPs = 2*MACs - outputs; a fused bias adds one per output: 2*MACs.
    ``2mac``: FLOPs = 2*MACs, bias ignored (FlopCounterMode, DeepSpeed, 6N-per-token).
    """
    if call.convention == "2mac":
        return Work(macs=macs, flops=2 * macs)
    # an empty reduction (k = 0, no input channels) sums nothing: no adds, never below 0
    return Work(macs=macs, flops=max(2 * macs - (0 if bias else outputs), 0))


def unfused_bytes(
    inputs: Iterable[TensorMeta], outputs: Iterable[TensorMeta]
) -> tuple[int, int, int]:
    """(bytes read, bytes written, weight bytes read) of an unfused op: every distinct input
    tensor (by storage and shape) is read once, every output written once."""
    seen: set[tuple[int, tuple[int, ...]]] = set()
    read = weight = 0
    for t in inputs:
        key = (t.sid, t.shape)
        if t.sid and key in seen:
            continue
        seen.add(key)
        read += t.nbytes
        if t.weight:
            weight += t.nbytes
    return read, sum(t.nbytes for t in outputs), weight


def per_output(call: OpCall, flops_per_element: int) -> Work:
    """A non-MAC op costing a fixed number of FLOPs per output element."""
    return Work(flops=flops_per_element * call.out.numel)
