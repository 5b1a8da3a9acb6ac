"""The output formats of every result type, declared once (the CLI's ``--format`` choices and
the renderers' dispatch both read them)."""

from __future__ import annotations

REPORT_FORMATS = ("table", "json", "csv", "md")
# Several models side by side (the paper table); `analyze` with one model and -f latex too.
COMPARISON_FORMATS = ("table", "json", "csv", "md", "latex")
OPS_FORMATS = ("table", "md", "json")
MEASURE_FORMATS = ("table", "json")
UTILIZATION_FORMATS = ("table", "json")
HARDWARE_LIST_FORMATS = ("table", "md", "json")
HARDWARE_SHOW_FORMATS = ("table", "json", "toml")


def unknown_format(fmt: str, formats: tuple[str, ...], what: str = "format") -> ValueError:
    """The error a renderer raises for a format it does not have."""
    return ValueError(f"unknown {what} {fmt!r}; use one of {', '.join(formats)}")
