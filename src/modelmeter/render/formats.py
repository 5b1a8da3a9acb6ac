"""The output formats of every result type, declared once (the CLI's ``--format`` choices and
the renderers' dispatch both read them)."""

from __future__ import annotations

REPORT_FORMATS = ("table", "json", "csv", "md", "html")  # html: one self-contained page
# Several models side by side (the paper table); `analyze` with one model and -f latex too.
COMPARISON_FORMATS = ("table", "json", "csv", "md", "latex")
# A sweep (analyze --sweep) and a formula alone (analyze --formula); charts by -f png/pdf/svg.
SWEEP_FORMATS = ("table", "json", "csv", "md")
FORMULA_FORMATS = ("table", "json", "md")
# One model on several chips (analyze --hardware A,B,C).
CHIPS_FORMATS = ("table", "json", "csv", "md")
OPS_FORMATS = ("table", "md", "json")
MEASURE_FORMATS = ("table", "json", "md")
UTILIZATION_FORMATS = ("table", "json", "md")
TRAINING_FORMATS = ("table", "json")
GENERATION_FORMATS = ("table", "json")
HARDWARE_LIST_FORMATS = ("table", "md", "json")
HARDWARE_SHOW_FORMATS = ("table", "json", "toml", "md")
DIFF_FORMATS = ("table", "md", "json")  # `modelmeter diff`: what changed between two reports
FUSION_FORMATS = ("table", "md", "csv", "json")  # analyze --fuse
HARDWARE_COMPARE_FORMATS = ("table", "md", "json")
# Charts (--plot, --plot-breakdown, --plot-classes): the file name's extension picks one.
PLOT_FORMATS = ("png", "pdf", "svg")


def plot_format(path: str) -> str | None:
    """The chart format a file name asks for (its extension, any case), None for another."""
    ext = path.rpartition(".")[2].lower() if "." in path else ""
    return ext if ext in PLOT_FORMATS else None


def unknown_format(fmt: str, formats: tuple[str, ...], what: str = "format") -> ValueError:
    """The error a renderer raises for a format it does not have."""
    return ValueError(f"unknown {what} {fmt!r}; use one of {', '.join(formats)}")
