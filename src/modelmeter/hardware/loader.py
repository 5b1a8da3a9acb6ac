"""Read and check hardware TOML files; write them back (for ``calibrate``).

Every problem is one :class:`HardwareSpecError` naming the file and the field, e.g.
``hardware file my.toml: memory.bandwidth must be > 0 (got '-1T')``.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from modelmeter.errors import ModelmeterError
from modelmeter.hardware.spec import KERNEL_CLASSES, KINDS, HardwareSpec
from modelmeter.units import DTYPE_BYTES, canonical_dtype

TOP_KEYS = {
    "name",
    "display_name",
    "vendor",
    "kind",
    "verified",
    "source",
    "notes",
    "memory",
    "compute",
    "vector",
    "overhead",
    "efficiency",
}
TABLE_KEYS = {
    "memory": {"bandwidth", "capacity", "cache"},
    "overhead": {"kernel", "overlap", "dtypes"},
    "efficiency": {"compute", "memory", "kernels", "dtypes"},
}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Dtypes a peak may be given for: every dtype modelmeter knows.
PEAK_DTYPES = tuple(DTYPE_BYTES)

# Suffix -> divisor (dividing keeps "10us" exactly 1e-05).
_TIME_UNITS = (("ns", 1e9), ("us", 1e6), ("µs", 1e6), ("μs", 1e6), ("ms", 1e3), ("s", 1.0))


class HardwareSpecError(ModelmeterError):
    """A hardware file (or name) that cannot be used."""


def parse_seconds(text: str | float | int) -> float:
    """``4us``, ``0.5 ms``, ``2e-6`` or a number -> seconds. ValueError on anything else."""
    if isinstance(text, bool):
        raise ValueError(f"not a time: {text!r} (write e.g. 4us, 0.5ms)")
    if isinstance(text, (int, float)):
        return float(text)
    raw = str(text).strip()
    for suffix, scale in _TIME_UNITS:
        if raw.endswith(suffix):
            try:
                return float(raw[: -len(suffix)].strip()) / scale
            except ValueError:
                break
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"not a time: {raw!r} (write e.g. 4us, 0.5ms)") from None


# What a quantity measures -> the unit words it may carry, compared case-insensitively; a
# bandwidth or size whose unit has a lowercase "b" (Gb/s, Mbps) is bits and is refused.
_UNITS = {
    "rate": ("", "flops", "flop/s", "ops", "op/s", "/s"),  # a peak: FLOP/s or OP/s
    "bandwidth": ("", "b/s", "bps", "/s"),  # bytes per second
    "bytes": ("", "b"),  # a size in bytes
}
_WHAT = {
    "rate": "a peak in FLOP/s or OP/s",
    "bandwidth": "a bandwidth in bytes/s",
    "bytes": "a size in bytes",
}
_EXAMPLES = {
    "rate": "1.7T, 312TFLOPS, 1.7TOPS",
    "bandwidth": "25.6G, 3.35TB/s, 800GiB/s",
    "bytes": "80G, 32GiB",
}
_QUANTITY = re.compile(
    r"^(?P<num>[-+]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*"
    r"(?P<prefix>[kKmMgGtTpPeE]i?)?\s*(?P<unit>[A-Za-z/]*)$"
)
_SI = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18}
_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50, "e": 2**60}


def parse_quantity(text: str, kind: str) -> float:
    """``1.7T``, ``1.7 TOPS``, ``312 TFLOPS`` (kind ``rate``); ``25.6G``, ``3.35 TB/s``,
    ``1200 GBps``, ``800 GiB/s`` (``bandwidth``); ``80G``, ``32 GiB`` (``bytes``) -> a float in
    base units. SI prefixes are powers of 1000, ``Ki``/``Mi``/``Gi``/``Ti`` powers of 1024.
    ValueError, naming the problem, on anything else: a unit of another kind (a bandwidth in
    FLOP/s, a peak in bytes/s) and bits (``Gb/s``) included."""
    raw = str(text).strip()
    m = _QUANTITY.match(raw)
    if not m:
        raise ValueError(f"not a number: {raw!r} (write e.g. {_EXAMPLES[kind]})")
    num, prefix, unit = m.group("num"), m.group("prefix") or "", m.group("unit")
    if unit.lower() not in _UNITS[kind]:
        other = next((k for k, units in _UNITS.items() if unit.lower() in units), None)
        if other is None:
            raise ValueError(f"{raw!r}: unknown unit {unit!r} (write e.g. {_EXAMPLES[kind]})")
        raise ValueError(f"{raw!r} looks like {_WHAT[other]}, not {_WHAT[kind]}")
    if kind != "rate" and "b" in unit:
        raise ValueError(f"{raw!r} is in bits (lowercase b); write bytes with B, e.g. "
                         f"{_EXAMPLES[kind]}")
    scale = 1.0
    if prefix:
        table = _BINARY if prefix.endswith("i") else _SI
        scale = float(table[prefix[0].lower()])
    return float(num.replace("_", "")) * scale


def format_si(value: float) -> str:
    """A number as a short SI string that :func:`modelmeter.units.parse_si` reads back."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.10g}{prefix}"
    return f"{value:.10g}"


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, message: str) -> HardwareSpecError:
        return HardwareSpecError(f"hardware file {self.where}: {field} {message}")

    def text(self, d: dict[str, Any], key: str, required: bool = True, default: str = "") -> str:
        if key not in d:
            if required:
                raise self.fail(key, "is missing")
            return default
        value = d[key]
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string (got {value!r})")
        return value

    def number(self, value: Any, field: str, kind: str = "rate", *, most: float | None = None
               ) -> float:
        """A positive finite figure: a TOML number, or a string with an SI prefix and a unit
        of ``kind`` (``rate``, ``bandwidth``, ``bytes``; ``fraction``: a plain number)."""
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.fail(field, f"must be a number or a string such as '3.35T' (got {value!r})")
        if isinstance(value, str) and kind == "fraction":
            raise self.fail(field, f"must be a plain number such as 0.8 (got {value!r})")
        try:
            x = float(value) if not isinstance(value, str) else parse_quantity(value, kind)
        except ValueError as e:
            text = str(e)
            raise self.fail(field, f"is {text}" if text.startswith("not a number")
                            else f"is invalid: {text}") from None
        except OverflowError:
            x = math.inf
        if not math.isfinite(x):
            raise self.fail(field, f"must be a finite number (got {value!r})")
        if x <= 0:
            raise self.fail(field, f"must be > 0 (got {value!r})")
        if most is not None and x > most:
            raise self.fail(field, f"must be at most {most:g} (got {value!r})")
        return x

    def table(self, d: dict[str, Any], key: str) -> dict[str, Any]:
        value = d.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table ([" + key + "])")
        allowed = TABLE_KEYS.get(key)
        if allowed is not None:
            extra = sorted(set(value) - allowed)
            if extra:
                raise self.fail(
                    f"{key}.{extra[0]}", f"is not a known field; use {', '.join(sorted(allowed))}"
                )
        return value

    def dtype(self, dtype: str, field: str) -> str:
        """A table key that must be a canonical dtype name."""
        if dtype not in PEAK_DTYPES:
            try:
                hint = f"write its canonical name, {canonical_dtype(dtype)}"
            except ValueError:
                hint = f"use one of {', '.join(PEAK_DTYPES)}"
            raise self.fail(field, f"is not a known dtype; {hint}")
        return dtype

    def peaks(self, d: dict[str, Any], key: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for dtype, value in self.table(d, key).items():
            self.dtype(dtype, f"{key}.{dtype}")
            out[dtype] = self.number(value, f"{key}.{dtype}")
        return out

    def by_dtype(
        self, parent: dict[str, Any], field: str, read: Callable[[Any, str], Any]
    ) -> dict[str, Any]:
        """The table ``field`` (``overhead.dtypes``: the last part of the name is the key in
        ``parent``), one entry per canonical dtype name, each read by ``read(value, name)``."""
        value = parent.get(field.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a table ([{field}] or [{field}.<dtype>])")
        if "tfloat32" in value:  # ops are float32 with TF32 allowed, never tfloat32
            raise self.fail(
                f"{field}.tfloat32", "is not an op dtype (TF32 is a float32 setting): use float32"
            )
        return {self.dtype(d, f"{field}.{d}"): read(v, f"{field}.{d}") for d, v in value.items()}

    def seconds(self, value: Any, field: str) -> float:
        """A time >= 0: ``4us``, ``0.5ms`` or a number of seconds."""
        try:
            x = parse_seconds(value)
        except ValueError as e:
            raise self.fail(field, f"is {e}") from None
        if not math.isfinite(x) or x < 0:
            raise self.fail(field, f"must be >= 0 (got {value!r})")
        return x

    def kernels(self, value: Any, where: str) -> dict[str, tuple[float, float]]:
        """A table of kernel class -> fraction, or -> {compute, memory}: (compute, memory)."""
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table ([{where}])")
        out: dict[str, tuple[float, float]] = {}
        for cls, v in value.items():
            label = f"{where}.{cls}"
            if cls not in KERNEL_CLASSES:
                raise self.fail(
                    label, f"is not a known kernel class; use {', '.join(KERNEL_CLASSES)}"
                )
            if not isinstance(v, dict):  # one figure for both ceilings
                f = self.number(v, label, "fraction", most=1.0)
                out[cls] = (f, f)
                continue
            extra = sorted(set(v) - {"compute", "memory"})
            if extra:
                raise self.fail(f"{label}.{extra[0]}", "is not a known field; use compute, memory")
            out[cls] = (
                self.number(v.get("compute", 1.0), f"{label}.compute", "fraction", most=1.0),
                self.number(v.get("memory", 1.0), f"{label}.memory", "fraction", most=1.0),
            )
        return out


def spec_from_dict(data: dict[str, Any], where: str = "<dict>") -> HardwareSpec:
    """Check a parsed TOML document and build the spec (HardwareSpecError on any problem)."""
    c = _Checker(where)
    extra = sorted(set(data) - TOP_KEYS)
    if extra:
        raise c.fail(extra[0], f"is not a known field; use {', '.join(sorted(TOP_KEYS))}")
    name = c.text(data, "name")
    if not NAME_RE.match(name):
        raise c.fail("name", f"must be lowercase letters, digits, '.', '_' or '-' (got {name!r})")
    kind = c.text(data, "kind")
    if kind not in KINDS:
        raise c.fail("kind", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    verified = data.get("verified", False)
    if not isinstance(verified, bool):
        raise c.fail("verified", f"must be true or false (got {verified!r})")
    memory = c.table(data, "memory")
    if "bandwidth" not in memory:
        raise c.fail("memory.bandwidth", "is missing (bytes/s, e.g. '3.35T')")
    compute = c.peaks(data, "compute")
    vector = c.peaks(data, "vector")
    if not compute:
        raise c.fail("[compute]", "needs at least one dtype peak (FLOP/s), e.g. int8 = '1.7T'")
    overhead = c.table(data, "overhead")
    kernel = c.seconds(overhead["kernel"], "overhead.kernel") if "kernel" in overhead else 0.0
    overlap = overhead.get("overlap")
    if overlap is not None and not isinstance(overlap, bool):
        raise c.fail("overhead.overlap", f"must be true or false (got {overlap!r})")
    dtype_overhead = c.by_dtype(overhead, "overhead.dtypes", c.seconds)
    eff = c.table(data, "efficiency")
    general = c.kernels(eff.get("kernels", {}), "efficiency.kernels")
    kernel_efficiency = {cls: f[0] for cls, f in general.items()}
    kernel_memory = {cls: f[1] for cls, f in general.items() if f[1] != f[0]}
    dtype_kernels = c.by_dtype(eff, "efficiency.dtypes", c.kernels)
    return HardwareSpec(
        name=name,
        display_name=c.text(data, "display_name", required=False, default=name),
        vendor=c.text(data, "vendor"),
        kind=kind,
        bandwidth=c.number(memory["bandwidth"], "memory.bandwidth", "bandwidth"),
        capacity=(
            c.number(memory["capacity"], "memory.capacity", "bytes")
            if "capacity" in memory else None
        ),
        cache=c.number(memory["cache"], "memory.cache", "bytes") if "cache" in memory else None,
        compute=compute,
        vector=vector,
        kernel_overhead=kernel,
        overlap=overlap,
        # a kernel cannot beat the peak; unfused byte counts can exceed what fused kernels
        # really move, so memory may be above 1 (docs/hardware.md)
        efficiency_compute=c.number(eff.get("compute", 1.0), "efficiency.compute", "fraction",
                                    most=1.0),
        efficiency_memory=c.number(eff.get("memory", 1.0), "efficiency.memory", "fraction"),
        kernel_efficiency=kernel_efficiency,
        kernel_memory=kernel_memory,
        dtype_overhead=dtype_overhead,
        dtype_kernels=dtype_kernels,
        verified=verified,
        source=c.text(data, "source", required=False),
        notes=c.text(data, "notes", required=False),
        path=None if where == "<dict>" else where,
    )


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


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dump_toml(spec: HardwareSpec) -> str:
    """The spec as a TOML document in the schema :func:`load_file` reads."""
    lines = [
        f"name = {_toml_str(spec.name)}",
        f"display_name = {_toml_str(spec.display_name)}",
        f"vendor = {_toml_str(spec.vendor)}",
        f"kind = {_toml_str(spec.kind)}",
        f"verified = {'true' if spec.verified else 'false'}",
        f"source = {_toml_str(spec.source)}",
        f"notes = {_toml_str(spec.notes)}",
        "",
        "[memory]",
        f'bandwidth = "{format_si(spec.bandwidth)}"',
    ]
    if spec.capacity is not None:
        lines.append(f'capacity = "{format_si(spec.capacity)}"')
    if spec.cache is not None:
        lines.append(f'cache = "{format_si(spec.cache)}"')
    for table, peaks in (("compute", spec.compute), ("vector", spec.vector)):
        lines += ["", f"[{table}]"]
        lines += [f'{dtype} = "{format_si(v)}"' for dtype, v in peaks.items()]
    lines += [
        "",
        "[overhead]",
        f'kernel = "{spec.kernel_overhead * 1e6:.10g}us"',
        f"overlap = {'true' if spec.launches_overlap else 'false'}",
    ]
    if spec.dtype_overhead:
        lines += ["", "[overhead.dtypes]"]
        lines += [f'{d} = "{v * 1e6:.10g}us"' for d, v in spec.dtype_overhead.items()]
    lines += [
        "",
        "[efficiency]",
        f"compute = {spec.efficiency_compute!r}",
        f"memory = {spec.efficiency_memory!r}",
    ]
    tables = [("efficiency.kernels", spec.kernels_table())]
    tables += [(f"efficiency.dtypes.{d}", spec.dtype_kernels_table(d)) for d in spec.dtype_kernels]
    for header, table in tables:
        if not table:
            continue
        lines += ["", f"[{header}]"]
        for cls, v in table.items():
            if isinstance(v, dict):
                lines.append(f"{cls} = {{ compute = {v['compute']!r}, memory = {v['memory']!r} }}")
            else:
                lines.append(f"{cls} = {v!r}")
    return "\n".join(lines) + "\n"
