"""Chips as data: one TOML file per device in ``specs/``, loaded into a :class:`HardwareSpec`.

``load_spec("h100-sxm")`` reads a built-in device, ``load_spec("my_chip.toml")`` a user file;
``spec_from_peak(1.7e12, 25.6e9)`` builds one from two figures (the source document's quick estimate).
"""

from __future__ import annotations

import difflib
import functools
import os
from importlib import resources

from modelmeter.hardware.loader import (
    HardwareSpecError,
    dump_toml,
    format_si,
    load_file,
    parse_seconds,
    spec_from_dict,
)
from modelmeter.hardware.spec import KINDS, HardwareSpec, PeakChoice, resolve_peak
from modelmeter.units import canonical_dtype


def _specs_dir() -> resources.abc.Traversable:
    return resources.files("modelmeter.hardware") / "specs"


@functools.lru_cache(maxsize=1)
def _builtin() -> dict[str, HardwareSpec]:
    out: dict[str, HardwareSpec] = {}
    for entry in sorted(_specs_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            with resources.as_file(entry) as path:
                spec = load_file(path)
            out[spec.name] = spec
    return out


def builtin_names() -> list[str]:
    """Names of the devices shipped with modelmeter, sorted."""
    return sorted(_builtin())


def list_specs() -> list[HardwareSpec]:
    """Every built-in device, sorted by name."""
    db = _builtin()
    return [db[n] for n in sorted(db)]


def _looks_like_path(text: str) -> bool:
    return text.endswith(".toml") or os.sep in text or "/" in text or os.path.isfile(text)


def load_spec(name_or_path: str) -> HardwareSpec:
    """A built-in device by name (case-insensitive) or a TOML file by path.

    Raises :class:`HardwareSpecError` (a ModelmeterError) with one clear line otherwise.
    """
    text = str(name_or_path).strip()
    if _looks_like_path(text):
        return load_file(text)
    db = _builtin()
    key = text.lower()
    if key in db:
        return db[key]
    close = did_you_mean(key, list(db))
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise HardwareSpecError(
        f"unknown hardware {text!r}{hint} (see 'modelmeter hardware list', or give a .toml file)"
    )


def did_you_mean(key: str, names: list[str], n: int = 4) -> list[str]:
    """The names a mistyped ``key`` most likely meant: those that start with it, then those
    that contain it (``a100`` -> every a100 entry), then close spellings; at most ``n``."""
    key = key.lower()
    prefix = sorted(x for x in names if x.startswith(key))
    inside = sorted(x for x in names if key in x and x not in prefix)
    close = difflib.get_close_matches(key, names, n=n, cutoff=0.5)
    picked = [*prefix, *inside, *(x for x in close if x not in prefix and x not in inside)]
    return picked[:n] if key else []


def spec_from_peak(
    peak: float,
    bandwidth: float,
    dtype: str = "int8",
    name: str = "custom",
    *,
    kernel_overhead: float = 0.0,
    kind: str = "npu",
) -> HardwareSpec:
    """A device known only by one peak (FLOP/s or OP/s in ``dtype``) and its bandwidth (B/s)."""
    try:
        dt = canonical_dtype(dtype)
    except ValueError as e:
        raise HardwareSpecError(f"--peak-dtype: {e}") from None
    for label, value in (("peak", peak), ("bandwidth", bandwidth)):
        if not value > 0 or value == float("inf"):
            raise HardwareSpecError(f"{label} must be a positive number (got {value!r})")
    return HardwareSpec(
        name=name,
        display_name=f"custom: {format_si(peak)} {dt} peak, {format_si(bandwidth)}B/s",
        vendor="-",
        kind=kind,
        bandwidth=float(bandwidth),
        compute={dt: float(peak)},
        kernel_overhead=kernel_overhead,
        verified=False,
        source="given on the command line",
    )


__all__ = [
    "did_you_mean",
    "HardwareSpec",
    "HardwareSpecError",
    "PeakChoice",
    "KINDS",
    "load_spec",
    "load_file",
    "list_specs",
    "builtin_names",
    "spec_from_peak",
    "spec_from_dict",
    "resolve_peak",
    "dump_toml",
    "format_si",
    "parse_seconds",
]
