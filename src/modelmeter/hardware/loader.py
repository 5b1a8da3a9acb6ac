"""Read hardware TOML files by the schema (hardware/schema.py); write them back.

Every problem is one :class:`HardwareSpecError` naming the file and the field, e.g.
``hardware file my.toml: memory.bandwidth must be > 0 (got '-1T')``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from modelmeter.hardware.quantities import format_si, parse_quantity, parse_seconds
from modelmeter.hardware.schema import (
    KEY_CHECKS,
    NUMBER_KINDS,
    SCHEMA,
    SIDES,
    TOP_KEYS,
    Field,
    HardwareSpecError,
    SpecFieldError,
    _document,
)
from modelmeter.hardware.schema_toml import _toml_table, to_toml
from modelmeter.hardware.spec import HardwareSpec


class _Reader:
    """Reads a parsed TOML document by the schema: its shape (tables, known keys, required
    fields) and each figure's text (units, times) into HardwareSpec arguments. What the
    values may be is the schema's check, run once when the spec is made; ``raw`` keeps each
    figure's text so that an error shows what the file says."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.raw: dict[str, tuple[str, Any]] = {}  # label -> (label in the file, its text)

    def fail(self, field: str, message: str) -> HardwareSpecError:
        return HardwareSpecError(f"hardware file {self.where}: {field} {message}")

    def read(self, fields: tuple[Field, ...], data: dict[str, Any], prefix: str,
             out: dict[str, Any]) -> None:
        """The arguments ``fields`` give, from the table ``data`` (labels start ``prefix``)."""
        for f in fields:
            label = prefix + f.key
            if f.kind == "table":
                table = self.table(data.get(f.key, {}), label, {t.key for t in f.table})
                self.read(f.table, table, label + ".", out)
            elif f.kind == "section" and f.key in data:  # [attainable]: its own arguments
                held: dict[str, Any] = {}
                self.read(f.table, self.table(data[f.key], label, {t.key for t in f.table}),
                          label + ".", held)
                out[f.name] = held
            elif f.key not in data:
                if f.required:
                    raise self.fail(label, f.missing)
            elif f.kind == "peaks":
                peaks = self.table(data[f.key], label)
                out[f.name] = {d: self.number(v, f"{label}.{d}", f.entry) for d, v in peaks.items()}
            elif f.kind == "kernels":
                pairs = self.kernels(data[f.key], label)
                out["kernel_efficiency"] = {cls: p[0] for cls, p in pairs.items()}
                out["kernel_memory"] = {cls: p[1] for cls, p in pairs.items() if p[1] != p[0]}
            elif f.kind in ("by_dtype", "by_runtime", "by_class"):
                out[f.name] = self.keyed(data[f.key], label, f.kind, f.entry)
            else:
                out[f.name] = self.value(data[f.key], label, f.kind)

    def table(self, value: Any, label: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(label, f"must be a table ([{label}])")
        extra = sorted(set(value) - (allowed or set(value)))
        if extra:
            raise self.fail(
                f"{label}.{extra[0]}", f"is not a known field; use {', '.join(sorted(allowed or ()))}"
            )
        return value

    def value(self, value: Any, label: str, kind: str) -> Any:
        self.raw[label] = (label, value)
        if kind == "seconds":
            try:
                return parse_seconds(value)
            except ValueError as e:
                raise self.fail(label, f"is {e}") from None
        return self.number(value, label, kind) if kind in NUMBER_KINDS else value

    def number(self, value: Any, label: str, kind: str) -> Any:
        """A figure: a TOML number, or a string with an SI prefix and a unit of ``kind``
        (``rate``, ``bandwidth``, ``bytes``; ``fraction``: a plain number). Anything else is
        left for the schema's check to refuse."""
        self.raw[label] = (label, value)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return value
        if isinstance(value, str) and kind == "fraction":
            raise self.fail(label, f"must be a plain number such as 0.8 (got {value!r})")
        try:
            return float(value) if not isinstance(value, str) else parse_quantity(value, kind)
        except ValueError as e:
            text = str(e)
            raise self.fail(label, f"is {text}" if text.startswith("not a number")
                            else f"is invalid: {text}") from None
        except OverflowError:
            return math.inf

    def keyed(self, value: Any, label: str, kind: str, entry: str) -> dict[str, Any]:
        """``[overhead.dtypes]``, ``[overhead.launch_classes]``, ``[overhead.runtimes]`` or
        ``[efficiency.dtypes.<dtype>]``: one entry per key (an op dtype, a kernel class, a
        runtime). Each key is checked before its value, so that a misplaced table is named
        for its key rather than its value."""
        if not isinstance(value, dict):
            raise self.fail(label, _table_advice(label, kind, entry))
        out: dict[str, Any] = {}
        for key, v in value.items():
            here = f"{label}.{key}"
            try:
                KEY_CHECKS[kind](key, here, self.where)
            except SpecFieldError as e:
                raise self.fail(here, e.rule) from None
            if entry == "kernels":
                out[key] = self.kernels(v, here)
                continue
            if isinstance(v, dict):  # seconds, or a fraction ([efficiency.depthwise_taps])
                raise self.fail(here, f"must be {_ENTRY_WORDS[entry][1]}, not a table")
            out[key] = self.value(v, here, entry)
        return out

    def kernels(self, value: Any, label: str) -> dict[str, tuple[Any, Any]]:
        """A table of kernel class -> fraction, or -> {compute, memory}: (compute, memory)."""
        if not isinstance(value, dict):
            raise self.fail(label, f"must be a table ([{label}])")
        out: dict[str, tuple[Any, Any]] = {}
        for cls, v in value.items():
            here = f"{label}.{cls}"
            if not isinstance(v, dict):  # one figure for both ceilings
                f = self.number(v, here, "fraction")
                out[cls] = (f, f)
                continue
            extra = sorted(set(v) - set(SIDES))
            if extra:
                raise self.fail(f"{here}.{extra[0]}", f"is not a known field; use {', '.join(SIDES)}")
            compute, memory = (self.number(v.get(s, 1.0), f"{here}.{s}", "fraction") for s in SIDES)
            out[cls] = (compute, memory)
            self.raw[here] = self.raw[f"{here}.compute"]  # both sides alike: named by compute
        return out


# Each keyed table's key: what it names, and an example entry of each kind.
_KEY_WORDS = {"by_dtype": ("op dtype", "bfloat16"), "by_class": ("kernel class", "conv"),
              "by_runtime": ("runtime", "graphs")}
_ENTRY_WORDS = {"seconds": ("time", 'a time such as "3us"', '"3us"'),
                "fraction": ("fraction", "a plain number such as 0.5", "0.5")}


def _table_advice(label: str, kind: str, entry: str) -> str:
    """How a keyed table is written: ``[label]`` with ``key = value`` lines, or, for a table
    of kernel tables, ``[label.<dtype>]`` sections."""
    what, key = _KEY_WORDS[kind]
    if entry == "kernels":
        return f"must be a table of {what} -> kernel efficiencies ([{label}.{key}] with e.g. conv = 0.5)"
    word, _, example = _ENTRY_WORDS[entry]
    return f"must be a table of {what} -> {word} ([{label}] with e.g. {key} = {example})"


def spec_from_dict(data: dict[str, Any], where: str = "<dict>") -> HardwareSpec:
    """Check a parsed TOML document and build the spec (HardwareSpecError on any problem)."""
    reader = _Reader(where)
    extra = sorted(set(data) - TOP_KEYS)
    if extra:
        raise reader.fail(extra[0], f"is not a known field; use {', '.join(sorted(TOP_KEYS))}")
    args: dict[str, Any] = {}
    reader.read(SCHEMA, data, "", args)
    args.setdefault("display_name", args["name"])
    try:
        return HardwareSpec(**args, path=None if where == "<dict>" else where)
    except SpecFieldError as e:
        label, raw = reader.raw.get(e.label, (e.label, e.value))
        raise e.said_of(f"hardware file {where}", label, raw) from None


def load_file(path: str | Path) -> HardwareSpec:
    """Read one hardware TOML file (HardwareSpecError naming the file on any problem)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise HardwareSpecError(f"hardware file {p} does not exist") from None
    except OSError as e:
        raise HardwareSpecError(f"cannot read hardware file {p}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HardwareSpecError(
            f"hardware file {p} is not valid TOML: not UTF-8 text (byte {e.start}: "
            f"{raw[e.start:e.start + 1]!r})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HardwareSpecError(f"hardware file {p} is not valid TOML: {e}") from None
    return spec_from_dict(data, str(p))


def dump_toml(spec: HardwareSpec) -> str:
    """The spec as a TOML document in the schema :func:`load_file` reads."""
    return to_toml(spec)


def attainable_toml(attainable: Any) -> str:
    """An ``[attainable]`` section alone (an Attainable), as the TOML a spec file ends with."""
    f = next(f for f in SCHEMA if f.key == "attainable")
    lines = _toml_table("attainable", f.table, _document(f.table, attainable))
    return "\n".join(lines).lstrip("\n") + "\n"


__all__ = [
    "HardwareSpecError",
    "attainable_toml",
    "dump_toml",
    "format_si",
    "load_file",
    "parse_quantity",
    "parse_seconds",
    "spec_from_dict",
]
