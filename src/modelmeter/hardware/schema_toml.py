"""The spec as a TOML document in the schema the loader reads (what ``modelmeter calibrate``
writes): :func:`to_toml`, laid out by :data:`~modelmeter.hardware.schema.SCHEMA`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from modelmeter.hardware.quantities import format_si
from modelmeter.hardware.schema import SCHEMA, SIDES, Field, HardwareSpec, to_dict


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _toml_value(kind: str, value: Any) -> str:
    if kind == "text":
        return _toml_str(value)
    if kind == "flag":
        return "true" if value else "false"
    if kind == "seconds":
        return f'"{value * 1e6:.10g}us"'
    if kind == "fraction":
        return repr(value)
    if kind == "kernels":  # one class: one figure, or the two sides apart
        if isinstance(value, Mapping):
            sides = ", ".join(f"{s} = {value[s]!r}" for s in SIDES)
            return f"{{ {sides} }}"
        return repr(value)
    return f'"{format_si(value)}"'  # rate, bandwidth, bytes


def _toml_table(header: str, fields: tuple[Field, ...], doc: dict[str, Any]) -> Iterator[str]:
    """``[header]``'s lines: its own keys, then its sub-tables."""
    if header:
        yield ""
        yield f"[{header}]"
    subtables: list[tuple[str, Field, Any]] = []
    for f in fields:
        if f.key not in doc:
            continue
        value = doc[f.key]
        label = f"{header}.{f.key}" if header else f.key
        if f.kind in ("table", "section", "peaks", "kernels", "by_dtype", "by_runtime",
                      "by_class"):
            subtables.append((label, f, value))
        else:
            yield f"{f.key} = {_toml_value(f.kind, value)}"
    for label, f, value in subtables:
        if f.kind in ("table", "section"):
            yield from _toml_table(label, f.table, value)
        elif f.kind == "by_dtype" and f.entry == "kernels":
            for dtype, table in value.items():
                if table:
                    yield from _entries(f"{label}.{dtype}", "kernels", table)
        else:
            yield from _entries(label, f.entry or f.kind, value)


def _entries(header: str, kind: str, table: Mapping[str, Any]) -> Iterator[str]:
    yield ""
    yield f"[{header}]"
    for key, value in table.items():
        yield f"{key} = {_toml_value(kind, value)}"


def to_toml(spec: HardwareSpec) -> str:
    """The spec as a TOML document in the schema the loader reads."""
    return "\n".join(_toml_table("", SCHEMA, to_dict(spec))) + "\n"


__all__ = ["to_toml"]
