"""The chip schema, once: every field of a hardware file, its type, unit, allowed values and
how it is written.

:data:`SCHEMA` describes the document a hardware TOML file holds. From it come

* the file's shape the loader reads (:data:`TOP_KEYS`, :data:`TABLE_KEYS`; the loader parses
  each figure by its field's kind);
* :func:`check`, the one validation of a :class:`~modelmeter.hardware.spec.HardwareSpec`: run
  where the spec is made (``HardwareSpec.__post_init__``), whether it was read from a file,
  given as two figures or built in Python;
* :func:`to_dict`, the spec as the document (the JSON report's ``"hardware"``); its TOML text
  (what ``modelmeter calibrate`` writes) is :mod:`modelmeter.hardware.schema_toml`'s.

Kinds of field: ``text``; ``flag`` (true/false); ``rate`` (FLOP/s or OP/s), ``bandwidth``
(bytes/s) and ``bytes``: positive figures, written with an SI prefix (``"3.35T"``);
``fraction``: a positive plain number, at most ``most``; ``seconds``: a time >= 0, written in
microseconds (``"4us"``). Tables: ``peaks`` (dtype -> rate), ``by_dtype`` (op dtype -> an
entry), ``by_runtime`` (runtime -> seconds), ``by_class`` (kernel class -> seconds),
``kernels`` (kernel class -> fraction, or ``{compute, memory}``); a ``section`` is a table held by its own object (``[attainable]``:
:class:`~modelmeter.hardware.attainable.Attainable`), absent when None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelmeter.errors import ModelmeterError
from modelmeter.hardware.attainable import BASES, RUNTIMES
from modelmeter.hardware.links import LINK_NAMES
from modelmeter.hardware.quantities import figure_rule
from modelmeter.registry import FAMILIES
from modelmeter.units import DTYPE_BYTES, canonical_dtype

# A HardwareSpec (hardware/spec.py builds on this module: it is named here, not imported).
HardwareSpec = Any
KINDS = ("gpu", "cpu", "npu", "tpu", "soc")
# Kernel classes a spec may give an attainable fraction of the roofline for
# ([efficiency.kernels]): the formula families, plus "depthwise" and "grouped" convolutions
# and "attention-decode" (analysis/kernels.py).
KERNEL_CLASSES = tuple(sorted((*FAMILIES, "attention-decode", "depthwise", "grouped")))
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Dtypes a peak may be given for: every dtype modelmeter knows.
PEAK_DTYPES = tuple(DTYPE_BYTES)
NUMBER_KINDS = ("rate", "bandwidth", "bytes", "fraction")
UNITS = {
    "rate": "FLOP/s (OP/s for integers)",
    "bandwidth": "bytes/s",
    "bytes": "bytes",
    "seconds": "seconds",
    "fraction": "fraction of the ceiling",
    "kernels": "fraction of the ceiling",
}
SIDES = ("compute", "memory")  # the two ceilings a kernel class's entry may give apart
# [overhead.runtimes] keys: eager's per-op host time is [overhead] kernel itself
RUNTIME_KEYS = tuple(r for r in RUNTIMES if r != "eager")


class HardwareSpecError(ModelmeterError):
    """A hardware file (or name) that cannot be used."""


_NOTHING = object()


class SpecFieldError(HardwareSpecError):
    """One field of a spec breaks the schema: ``label`` (as the file names it) and the rule,
    with the value that broke it (where the message shows one)."""

    def __init__(self, where: str, label: str, rule: str, value: Any = _NOTHING) -> None:
        self.label, self.rule, self.value = label, rule, value
        got = "" if value is _NOTHING else f" (got {value!r})"
        super().__init__(f"{where}: {label} {rule}{got}")

    def said_of(self, where: str, label: str, value: Any) -> HardwareSpecError:
        """The same error, said of ``where`` with the field's own ``label`` and ``value`` (a
        file's text, e.g. '-1T', rather than the figure read from it)."""
        shown = _NOTHING if self.value is _NOTHING else value
        return HardwareSpecError(str(SpecFieldError(where, label, self.rule, shown)))


@dataclass(frozen=True)
class Field:
    """One key of the document. ``attr``: the HardwareSpec attribute it holds (the key when
    empty); ``table``: a sub-table's fields; ``entry``: the kind of a keyed table's entries
    (``peaks``: rates, ``by_dtype``: ``seconds`` or ``kernels``)."""

    key: str
    kind: str
    attr: str = ""
    required: bool = False
    missing: str = "is missing"
    most: float | None = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    omit_none: bool = False  # written only when set
    omit_empty: bool = False  # a table written only when it has entries
    table: tuple[Field, ...] = ()
    entry: str = ""
    written: Callable[[HardwareSpec], Any] | None = None  # the value the document states

    @property
    def name(self) -> str:
        return self.attr or self.key

    @property
    def unit(self) -> str:
        """What the field's figures measure ("" for text, flags and tables of tables)."""
        return UNITS.get(self.entry or self.kind, "")

    def value(self, spec: HardwareSpec) -> Any:
        return self.written(spec) if self.written else getattr(spec, self.name)


# Fields the top level and [attainable] share.
_LAUNCH = Field("launch", "seconds", "launch_overhead", omit_none=True)  # device time per kernel
_MODULE_CALL = Field("module_call", "seconds", omit_none=True)  # eager host time per module call
# per kernel class: the device time of its kernels beyond their roofline (the launch above for
# the classes it does not name)
_LAUNCH_CLASSES = Field("launch_classes", "by_class", entry="seconds", omit_empty=True)
_RUNTIMES = Field("runtimes", "by_runtime", "runtime_overhead", entry="seconds", omit_empty=True)
_KERNELS = Field("kernels", "kernels", "kernel_efficiency", omit_empty=True,
                 written=lambda s: s.kernels_table())
# per op dtype: how a depthwise kernel's rate grows with its taps (KernelTables.taps_factor)
_TAPS = Field("depthwise_taps", "by_dtype", entry="fraction", most=2.0, omit_empty=True)
_DTYPE_KERNELS = Field("dtypes", "by_dtype", "dtype_kernels", entry="kernels", omit_empty=True,
                       written=lambda s: {d: s.dtype_kernels_table(d) for d in s.dtype_kernels})

SCHEMA: tuple[Field, ...] = (
    Field("name", "text", required=True, pattern=NAME_RE),
    Field("display_name", "text"),
    Field("vendor", "text", required=True),
    Field("kind", "text", required=True, choices=KINDS),
    Field("verified", "flag"),
    Field("source", "text"),
    Field("notes", "text"),
    Field("memory", "table", table=(
        Field("bandwidth", "bandwidth", required=True,
              missing="is missing (bytes/s, e.g. '3.35T')"),
        Field("capacity", "bytes", omit_none=True),
        Field("cache", "bytes", omit_none=True),
    )),
    Field("compute", "peaks", entry="rate"),
    Field("vector", "peaks", entry="rate"),
    Field("overhead", "table", table=(
        # eager per-op host time (the launch included)
        Field("kernel", "seconds", "kernel_overhead"),
        Field("overlap", "flag", omit_none=True, written=lambda s: s.launches_overlap),
        Field("dtypes", "by_dtype", "dtype_overhead", entry="seconds", omit_empty=True),
        _LAUNCH,
        _LAUNCH_CLASSES,
        _MODULE_CALL,
        _RUNTIMES,
        Field("step", "seconds", "step_overhead", omit_none=True),  # eager, per generation step
    )),
    Field("efficiency", "table", table=(
        # a kernel cannot beat the peak; unfused byte counts can exceed what fused kernels
        # really move, so memory may be above 1 (docs/hardware.md)
        Field("compute", "fraction", "efficiency_compute", most=1.0),
        Field("memory", "fraction", "efficiency_memory"),
        _KERNELS,
        _DTYPE_KERNELS,
        _TAPS,
    )),
    # the device's usual links (hardware/links.py), between the GPUs of a node and between nodes
    Field("interconnect", "table", omit_empty=True, table=(
        Field("intra", "text", "intra_link", omit_none=True, choices=LINK_NAMES),
        Field("inter", "text", "inter_link", omit_none=True, choices=LINK_NAMES),
    )),
    # what real kernels attain, beside the datasheet figures above (hardware/attainable.py)
    Field("attainable", "section", omit_none=True, table=(
        Field("basis", "text", choices=BASES),
        Field("source", "text"),
        Field("uncertainty", "text", omit_empty=True),
        Field("memory", "table", omit_empty=True, table=(
            Field("bandwidth", "bandwidth", omit_none=True),
        )),
        Field("compute", "peaks", entry="rate", omit_empty=True),
        Field("vector", "peaks", entry="rate", omit_empty=True),
        Field("overhead", "table", omit_empty=True, table=(
            Field("kernel", "seconds", "kernel_overhead", omit_none=True),
            Field("dtypes", "by_dtype", "dtype_overhead", entry="seconds", omit_empty=True),
            _LAUNCH,
            _LAUNCH_CLASSES,
            _MODULE_CALL,
            _RUNTIMES,
        )),
        Field("efficiency", "table", omit_empty=True, table=(_KERNELS, _DTYPE_KERNELS, _TAPS)),
    )),
)
TOP_KEYS = {f.key for f in SCHEMA}
TABLE_KEYS = {f.key: {t.key for t in f.table} for f in SCHEMA if f.kind == "table"}
KERNEL_FRACTION = Field("", "fraction", most=1.0)  # a kernel class's figure, either side


# ---- the one validation --------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rule(f: Field, value: Any) -> str | None:
    """What is wrong with ``value`` as field ``f`` (None: nothing)."""
    if f.kind == "text":
        if not isinstance(value, str):
            return "must be a string"
        if f.pattern is not None and not f.pattern.match(value):
            return "must be lowercase letters, digits, '.', '_' or '-'"
        if f.choices and value not in f.choices:
            return f"must be one of {', '.join(f.choices)}"
    elif f.kind == "flag":
        if not isinstance(value, bool):
            return "must be true or false"
    elif f.kind == "seconds":
        if _is_number(value) and not math.isfinite(value):
            return "must be a finite time such as '4us'"
        if not _is_number(value) or not 0 <= value < math.inf:
            return "must be >= 0"
        return figure_rule(value, "seconds", zero=True)
    elif f.kind in NUMBER_KINDS:
        if not _is_number(value):
            return "must be a number or a string such as '3.35T'"
        if f.most is not None and math.isfinite(value) and value > f.most:
            return f"must be at most {f.most:g}"
        return figure_rule(value, f.kind)  # finite, > 0, and not absurdly small or large
    return None


def _dtype_key(dtype: str, label: str, where: str, *, op: bool = False) -> None:
    """A table key that must be a canonical dtype name (``op``: the dtype of an op, which is
    never tfloat32)."""
    if op and dtype == "tfloat32":  # ops are float32 with TF32 allowed, never tfloat32
        raise SpecFieldError(where, label, "is not an op dtype (TF32 is a float32 setting): "
                                           "use float32")
    if dtype not in PEAK_DTYPES:
        try:
            hint = f"write its canonical name, {canonical_dtype(dtype)}"
        except ValueError:
            hint = f"use one of {', '.join(PEAK_DTYPES)}"
        raise SpecFieldError(where, label, f"is not a known dtype; {hint}")


def _one(f: Field, value: Any, label: str, where: str) -> None:
    rule = _rule(f, value)
    if rule is not None:
        raise SpecFieldError(where, label, rule, value)


def _class_key(cls: str, label: str, where: str) -> None:
    if cls not in KERNEL_CLASSES:
        raise SpecFieldError(where, label,
                             f"is not a known kernel class; use {', '.join(KERNEL_CLASSES)}")


def _runtime_key(runtime: str, label: str, where: str) -> None:
    if runtime not in RUNTIME_KEYS:
        raise SpecFieldError(where, label, f"is not a runtime with its own overhead; use "
                                           f"{', '.join(RUNTIME_KEYS)} (eager's is [overhead] kernel)")


# Each keyed table's key check, by the table's kind (the loader checks a file's keys with them)
KEY_CHECKS: dict[str, Callable[[str, str, str], None]] = {
    "by_dtype": lambda k, label, where: _dtype_key(k, label, where, op=True),
    "by_class": _class_key,
    "by_runtime": _runtime_key,
}


def _kernel_pair(pair: Any, label: str, where: str) -> None:
    """One kernel class's (compute, memory) fractions: one label when both are the same."""
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise SpecFieldError(where, label, "must be a (compute, memory) pair", pair)
    if pair[0] == pair[1]:
        _one(KERNEL_FRACTION, pair[0], label, where)
        return
    for side, value in zip(SIDES, pair, strict=True):
        _one(KERNEL_FRACTION, value, f"{label}.{side}", where)


def _mapping(value: Any, label: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecFieldError(where, label, "must be a table", value)
    return value


def _check_field(f: Field, spec: HardwareSpec, label: str, where: str) -> None:
    if f.kind in ("table", "section"):
        held = getattr(spec, f.name) if f.kind == "section" else spec
        for sub in f.table if held is not None else ():
            _check_field(sub, held, f"{label}.{sub.key}", where)
        return
    value = getattr(spec, f.name)
    if f.kind == "peaks":
        for dtype, v in _mapping(value, label, where).items():
            _dtype_key(dtype, f"{label}.{dtype}", where)
            _one(Field("", f.entry), v, f"{label}.{dtype}", where)
    elif f.kind == "kernels":
        memory = _mapping(spec.kernel_memory, f"{label}.memory", where)
        for cls in {**_mapping(value, label, where), **memory}:
            _class_key(cls, f"{label}.{cls}", where)
            compute = value.get(cls, 1.0)
            _kernel_pair((compute, memory.get(cls, compute)), f"{label}.{cls}", where)
    elif f.kind in KEY_CHECKS:  # a keyed table: each key checked, then its entry
        for key, v in _mapping(value, label, where).items():
            here = f"{label}.{key}"
            KEY_CHECKS[f.kind](key, here, where)
            if f.entry != "kernels":  # seconds, or a fraction at most f.most
                _one(Field("", f.entry, most=f.most), v, here, where)
                continue
            for cls, pair in _mapping(v, here, where).items():
                _class_key(cls, f"{here}.{cls}", where)
                _kernel_pair(pair, f"{here}.{cls}", where)
    elif not (f.omit_none and value is None):
        _one(f, value, label, where)


def check(spec: HardwareSpec) -> None:
    """Check every field of ``spec`` against the schema (SpecFieldError naming the field, as
    the file would, on the first problem)."""
    where = f"hardware {spec.name!r}"
    for f in SCHEMA:
        _check_field(f, spec, f.key, where)
        if f.key == "vector" and not spec.compute:
            raise SpecFieldError(where, "[compute]",
                                 "needs at least one dtype peak (FLOP/s), e.g. int8 = '1.7T'")


def _document(fields: tuple[Field, ...], spec: HardwareSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind in ("table", "section"):
            held = getattr(spec, f.name) if f.kind == "section" else spec
            sub = {} if held is None else _document(f.table, held)
            if not ((f.omit_none and held is None) or (f.omit_empty and not sub)):
                out[f.key] = sub
            continue
        value = f.value(spec)
        if f.kind in ("peaks", "by_dtype", "by_runtime", "by_class", "kernels"):
            value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
        if (f.omit_none and value is None) or (f.omit_empty and not value):
            continue
        out[f.key] = value
    return out


def to_dict(spec: HardwareSpec) -> dict[str, Any]:
    """The spec as the schema lays it out (numbers in base units)."""
    return _document(SCHEMA, spec)


__all__ = ["SCHEMA", "Field", "KINDS", "KERNEL_CLASSES", "KEY_CHECKS", "PEAK_DTYPES",
           "RUNTIME_KEYS", "TOP_KEYS", "TABLE_KEYS", "HardwareSpecError", "SpecFieldError",
           "check", "to_dict"]  # fmt: skip

