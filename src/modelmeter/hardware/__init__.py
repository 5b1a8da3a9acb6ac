"""Chips as data: one TOML file per device in ``specs/``, loaded into a :class:`HardwareSpec`.

``load_spec("h100-sxm")`` reads a built-in device, ``load_spec("my_chip.toml")`` a user file;
``spec_from_peak(1.7e12, 25.6e9)`` builds one from two figures (the seed's quick estimate).
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
    close = difflib.get_close_matches(key, list(db), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise HardwareSpecError(
        f"unknown hardware {text!r}{hint} (see 'modelmeter hardware list', or give a .toml file)"
    )


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
