"""The figures of a hardware file as text: times (``4us``), rates, bandwidths and sizes with
SI or binary prefixes (``1.7T``, ``3.35 TB/s``, ``32 GiB``), read and written back."""

from __future__ import annotations

import math
import re

# The range a figure may take, per kind: outside it a roofline's arithmetic overflows to inf
# or loses all precision (a peak of 1e-320 OP/s makes every time infinite), so the boundary
# refuses it. Times may also be 0 (no overhead); a rate, bandwidth or size may not.
FIGURE_RANGE: dict[str, tuple[float, float]] = {
    "rate": (1.0, 1e30),  # OP/s
    "bandwidth": (1.0, 1e30),  # bytes/s
    "bytes": (1.0, 1e30),
    "fraction": (1e-6, 1e6),  # an efficiency
    "seconds": (1e-15, 1e9),  # 1 fs .. ~32 years
}

# Suffix -> divisor (dividing keeps "10us" exactly 1e-05).
_TIME_UNITS = (("ns", 1e9), ("us", 1e6), ("µs", 1e6), ("μs", 1e6), ("ms", 1e3), ("s", 1.0))


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


def figure_rule(value: float, kind: str, *, zero: bool = False) -> str | None:
    """What is wrong with ``value`` as a figure of ``kind`` (a key of :data:`FIGURE_RANGE`);
    None when it is a finite number in range (or 0 where ``zero`` allows it)."""
    low, high = FIGURE_RANGE[kind]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number"
    if zero and value == 0:
        return None
    if not math.isfinite(value):
        return "must be a finite number"
    if value <= 0:
        return "must be >= 0" if zero else "must be > 0"
    if not low <= value <= high:
        unit = {"seconds": " s", "fraction": ""}.get(kind, "")
        return f"must be between {low:g}{unit} and {high:g}{unit}"
    return None


def format_si(value: float) -> str:
    """A number as a short SI string that :func:`modelmeter.units.parse_si` reads back."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.10g}{prefix}"
    return f"{value:.10g}"
