"""Dtypes, their sizes, and the unit formatters every output uses.

Counts (MACs, FLOPs, params), rates (FLOP/s or OP/s), bytes and durations are formatted by
different functions so that a count is never printed as a rate or the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Bytes per element, by canonical dtype name (torch's names without the "torch." prefix).
DTYPE_BYTES: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "tfloat32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "complex32": 4,
    "int4": 0.5,
    "uint4": 0.5,
    "float4_e2m1fn": 0.5,
    "float4_e2m1fn_x2": 1,
    "float8_e8m0fnu": 1,
    "int2": 0.25,
    "uint2": 0.25,
    "float6_e2m3fn": 0.75,
    "float6_e3m2fn": 0.75,
}

# Aliases a user may type (CLI --dtype, API dtype=...).
DTYPE_ALIASES: dict[str, str] = {
    "fp64": "float64",
    "double": "float64",
    "fp32": "float32",
    "float": "float32",
    "tf32": "tfloat32",
    "fp16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "fp8": "float8_e4m3fn",
    "e4m3": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "long": "int64",
    "int": "int32",
}

# Dtypes an analysis may be run in (--dtype, dtype=: weights and floating inputs cast to it):
# the real number formats weights and activations are stored in, floating or quantised integer
# (at most 16 bits). Complex, boolean and wide integer types are refused: a complex product is
# four real ones, so the counts would change, and the others hold no weights. (An input's own
# dtype, as in ``1x128:int64``, is not limited.)
ANALYSIS_DTYPES: frozenset[str] = frozenset(
    [k for k in DTYPE_BYTES if k.startswith(("float", "bfloat", "tfloat"))]
    + ["int16", "uint16", "int8", "uint8", "int4", "uint4", "int2", "uint2"]
)

# Precisions the size table always shows (model size "at every precision").
SIZE_PRECISIONS: tuple[str, ...] = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "int8",
    "int4",
)

SHORT_DTYPE: dict[str, str] = {
    "float64": "fp64",
    "float32": "fp32",
    "tfloat32": "tf32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8e5m2",
}


def canonical_dtype(name: str) -> str:
    """Return the canonical name of a dtype written as ``bf16``, ``torch.bfloat16`` ...

    Raises ``ValueError`` naming the known dtypes when ``name`` is not one.
    """
    key = str(name).strip().lower().removeprefix("torch.")
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        known = ", ".join(sorted(set(DTYPE_ALIASES) | set(DTYPE_BYTES)))
        raise ValueError(f"unknown dtype {name!r}; known: {known}")
    return key


def dtype_bytes(name: str) -> float:
    """Bytes per element of a dtype (int4 is 0.5)."""
    return DTYPE_BYTES[canonical_dtype(name)]


_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def _si(value: float, digits: int) -> tuple[str, str]:
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}", prefix
    if float(value).is_integer():
        return f"{int(value)}", ""
    return f"{value:.{digits}f}", ""


def format_count(value: float, digits: int = 2) -> str:
    """A count with an SI prefix: ``4.09G``, ``25.56M``, ``0``. Never a rate."""
    number, prefix = _si(value, digits)
    return f"{number}{prefix}"


def format_quantity(value: float, unit: str, digits: int = 2) -> str:
    """A count with its unit after the SI prefix: ``4.09 GMACs``, ``512 FLOPs``."""
    number, prefix = _si(value, digits)
    return f"{number} {prefix}{unit}"


_PARAM_PREFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def format_params(value: float, digits: int = 2) -> str:
    """A parameter count with the suffixes the field uses: ``6.74B`` (not G), ``25.56M``,
    ``0``. Only parameter counts; MACs and FLOPs keep SI (``G``)."""
    for scale, suffix in _PARAM_PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}f}{suffix}"
    return format_count(value, digits)


def format_rate(value: float, unit: str = "FLOP/s", digits: int = 2) -> str:
    """A rate with an SI prefix and its unit: ``312.00 TFLOP/s``."""
    number, prefix = _si(value, digits)
    return f"{number} {prefix}{unit}"


# How sizes in bytes are written: "si" (decimal: GB = 10^9 B, as chip datasheets use; the
# default) or "iec" (binary: GiB = 2^30 B, as operating systems and PyTorch's memory stats).
BYTE_UNITS: tuple[str, ...] = ("si", "iec")
_BYTE_UNITS: ContextVar[str] = ContextVar("modelmeter_byte_units", default="si")
_IEC = ((2.0**60, "Ei"), (2.0**50, "Pi"), (2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"),
        (2.0**10, "Ki"))  # fmt: skip


@contextmanager
def byte_units(units: str) -> Iterator[None]:
    """Within the block, :func:`format_bytes` writes sizes in ``units`` (``"si"`` or
    ``"iec"``): ``with byte_units("iec"): render_report(report)`` shows GiB."""
    if units not in BYTE_UNITS:
        raise ValueError(f"unknown units {units!r}; use one of {', '.join(BYTE_UNITS)}")
    token = _BYTE_UNITS.set(units)
    try:
        yield
    finally:
        _BYTE_UNITS.reset(token)


def format_bytes(value: float, digits: int = 2, units: str | None = None) -> str:
    """Bytes with decimal prefixes (``97.49 MB``), as chip datasheets use, or binary ones
    (``92.97 MiB``) with ``units="iec"``; None: the :func:`byte_units` in force (SI unless
    set)."""
    if (units or _BYTE_UNITS.get()) == "iec":
        for scale, prefix in _IEC:
            if abs(value) >= scale:
                return f"{value / scale:.{digits}f} {prefix}B"
        whole = float(value).is_integer()
        return f"{int(value) if whole else f'{value:.{digits}f}'} B"  # under 1 KiB: plain bytes
    number, prefix = _si(value, digits)
    return f"{number} {prefix}B"


def is_integer_dtype(dtype: str) -> bool:
    """Whether a dtype (or a peak key such as ``compute.int8``) is an integer type."""
    return dtype.rpartition(".")[2].startswith(("int", "uint"))


def rate_unit(dtype: str) -> str:
    """The unit of a peak in ``dtype`` (or a peak key such as ``compute.int8``): ``OP/s`` for
    integer dtypes, ``FLOP/s`` for the others."""
    return "OP/s" if is_integer_dtype(dtype) else "FLOP/s"


def format_peak(value: float, dtype: str) -> str:
    """A peak rate in the unit of its dtype: ``312.00 TFLOP/s``, ``26.00 TOP/s``."""
    return format_rate(value, rate_unit(dtype))


_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"))


def seconds_unit(seconds: float) -> tuple[float, str]:
    """The scale and unit a duration reads best in: (1e-3, "ms") for 0.0123."""
    for scale, unit in _TIME_UNITS:
        if abs(seconds) >= scale:
            return scale, unit
    return 1e-9, "ns"


def format_seconds(value: float, digits: int = 2) -> str:
    """A predicted duration with ``digits`` decimals: ``3.95 ms``, ``12.00 us``, ``1.11 s``,
    ``0`` for zero."""
    scale, unit = seconds_unit(value)
    if unit == "ns" and not value:
        return "0"
    return f"{value / scale:.{digits}f} {unit}"


def format_timing(seconds: float | None) -> str:
    """A measured duration, three significant-ish digits: ``1.204 s``, ``12.35 ms``,
    ``840.0 us`` (``-`` for None)."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def format_percent(fraction: float | None) -> str:
    """``12.3%`` of a fraction (``-`` for None)."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def format_ratio(x: float | None) -> str:
    """``1.23``; two significant digits below 0.1 (``0.0031``); ``-`` for None."""
    if x is None:
        return "-"
    return f"{x:.2g}" if abs(x) < 0.1 else f"{x:.2f}"


def parse_si(text: str) -> float:
    """Parse ``1.7T``, ``25.6G``, ``900M`` or a plain number into a float.

    Raises ``ValueError`` with the offending text on anything else.
    """
    raw = str(text).strip()
    s = raw
    for suffix in ("FLOP/s", "flop/s", "FLOPS", "OPS", "ops", "B/s", "b/s", "/s", "B"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
            break
    scale = 1.0
    for factor, prefix in _PREFIXES:
        if s.endswith(prefix) or s.endswith(prefix.lower()):
            scale = factor
            s = s[:-1]
            break
    try:
        return float(s) * scale
    except ValueError:
        raise ValueError(f"not a number: {raw!r} (write e.g. 1.7T, 25.6G, 900M)") from None
