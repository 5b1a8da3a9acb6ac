"""The device list and one device's card, as text (pure functions of specs).

``render_hardware_list`` (``HARDWARE_LIST_FORMATS``) and ``render_hardware_show``
(``HARDWARE_SHOW_FORMATS``); ``list_rows`` and ``show_lines`` are their cells.

``modelmeter hardware list --format md`` is the device table in docs/hardware.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from modelmeter.hardware import builtin_names
from modelmeter.hardware.loader import dump_toml, format_si
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.render._common import md_pairs
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import HARDWARE_LIST_FORMATS, HARDWARE_SHOW_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps
from modelmeter.render.pricing import attainable_lines
from modelmeter.units import format_bytes, format_peak, format_rate, rate_unit

# (column, dtypes it shows: the first one the spec has)
PEAK_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("FP64", ("float64",)),
    ("FP32", ("float32",)),
    ("TF32", ("tfloat32",)),
    ("FP16", ("float16",)),
    ("BF16", ("bfloat16",)),
    ("FP8", ("float8_e4m3fn", "float8_e5m2")),
    ("INT8", ("int8",)),
)
CALIBRATED = "measured by modelmeter calibrate"  # the source line of calibrate's files
LEGEND = (
    "Dense peaks in FLOP/s (OP/s for INT8) of the matrix units (tensor cores, MXU, NPU); "
    "a value marked `v` is the vector units' peak (no matrix peak for that dtype). "
    "Bandwidth in bytes/s; memory = the device's memory capacity (GB = 10^9 bytes, GiB = 2^30 "
    "bytes with --units iec; `-`: not given); "
    "overhead = per-kernel launch overhead (an estimate). "
    "Unverified devices have at least one figure that was not checked against a primary "
    "source or its faithful copy; the output of every analysis says so."
)
HEADER = (
    "Name",
    "Device",
    "Vendor",
    "Kind",
    *(c for c, _ in PEAK_COLUMNS),
    "Bandwidth",
    "Memory",
    "Overhead",
    "Verified",
    "Source",
)

_VERIFIED = HEADER.index("Verified")  # the columns before it, from the peaks on, are numbers


def _peak_cell(spec: HardwareSpec, dtypes: tuple[str, ...]) -> str:
    for dt in dtypes:
        if dt in spec.compute:
            return format_si(spec.compute[dt])
    for dt in dtypes:
        if dt in spec.vector:
            return format_si(spec.vector[dt]) + " v"
    return "-"


def _size(nbytes: float) -> str:
    """``24 GB`` (``22.35 GiB`` under ``--units iec``): trailing zero decimals dropped."""
    number, _, unit = format_bytes(nbytes).partition(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}"


def _overhead(seconds: float) -> str:
    return f"{seconds * 1e6:g} us"


def _basis(spec: HardwareSpec) -> str:
    """Where ``[overhead] kernel`` came from: measured by ``calibrate`` (its files' source
    says so), an estimate (the built-in chips: no datasheet gives it), else not known."""
    if spec.source.startswith(CALIBRATED):
        return " (measured by modelmeter calibrate)"
    return " (estimate)" if spec.name in builtin_names() else ""


def list_rows(specs: Sequence[HardwareSpec]) -> list[tuple[str, ...]]:
    """One tuple of cells per device (the columns of ``HEADER``)."""
    return [
        (
            s.name,
            s.display_name,
            s.vendor,
            s.kind,
            *(_peak_cell(s, dts) for _, dts in PEAK_COLUMNS),
            format_si(s.bandwidth),
            _size(s.capacity) if s.capacity else "-",
            _overhead(s.kernel_overhead),
            "yes" if s.verified else "NO",
            s.source,
        )
        for s in specs
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_hardware_list(
    specs: Sequence[HardwareSpec], fmt: str = "table", *, width: int = 160
) -> str:
    """The device table in ``HARDWARE_LIST_FORMATS``."""
    if fmt == "json":
        return dumps([s.to_dict() for s in specs])
    rows = list_rows(specs)
    if fmt == "md":
        out = [
            "| " + " | ".join(HEADER) + " |",
            "|" + "|".join("---" if i < 4 or i >= _VERIFIED else "---:" for i in range(len(HEADER))) + "|",
        ]
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        return "\n".join(out) + "\n\n" + LEGEND + "\n"
    if fmt != "table":
        raise unknown_format(fmt, HARDWARE_LIST_FORMATS)
    table = Table(
        title=f"{len(rows)} devices ('modelmeter hardware show NAME' for all fields)",
        box=box.ROUNDED,
        header_style="bold",
    )
    for i, col in enumerate(HEADER):
        if col in ("Device", "Vendor"):
            continue
        table.add_column(
            col,
            justify="right" if 4 <= i < _VERIFIED else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=22 if col == "Source" else None,
        )
    for row in rows:
        cells = row[:1] + row[3:]
        table.add_row(*plain(*cells), style=None if row[_VERIFIED] == "yes" else "yellow")
    return to_text(table, width) + LEGEND.replace("`", "") + "\n"


def show_lines(spec: HardwareSpec) -> list[tuple[str, str]]:
    """(field, value) lines of one device: every field of the schema."""
    lines = [
        ("name", spec.name),
        ("display_name", spec.display_name),
        ("vendor", spec.vendor),
        ("kind", spec.kind),
        ("verified", "yes" if spec.verified else "NO: some figures are unverified"),
        ("source", spec.source or "-"),
        ("notes", spec.notes or "-"),
        ("memory.bandwidth", format_rate(spec.bandwidth, "B/s")),
        ("memory.capacity", format_bytes(spec.capacity) if spec.capacity else "-"),
        ("memory.cache", format_bytes(spec.cache) if spec.cache else "-"),
    ]
    for table, peaks in (("compute", spec.compute), ("vector", spec.vector)):
        if not peaks:
            lines.append((table, "- (fallback rules apply)"))
        for dt, v in peaks.items():
            ridge = ""
            if table == "compute":
                ridge = f" · ridge {v / spec.bandwidth:.1f} {rate_unit(dt).removesuffix('/s')}/B"
            lines.append((f"{table}.{dt}", format_peak(v, dt) + ridge))
    lines += [
        ("overhead.kernel", _overhead(spec.kernel_overhead) + " per kernel" + _basis(spec)),
        *(
            (f"overhead.dtypes.{d}", _overhead(v) + f" per {d} kernel")
            for d, v in spec.dtype_overhead.items()
        ),
        (
            "overhead.overlap",
            "yes: launches overlap execution (asynchronous queue)"
            if spec.launches_overlap
            else "no: each kernel pays its overhead in series",
        ),
        ("efficiency.compute", f"{spec.efficiency_compute:g}"),
        ("efficiency.memory", f"{spec.efficiency_memory:g}"),
    ]
    tables = [("efficiency.kernels", spec.kernels_table())]
    tables += [(f"efficiency.dtypes.{d}", spec.dtype_kernels_table(d)) for d in spec.dtype_kernels]
    for header, table in tables:
        for cls, v in table.items():
            text = (
                f"compute {v['compute']:.3g} · memory {v['memory']:.3g}"
                if isinstance(v, dict)
                else f"{v:.3g}"
            )
            lines.append((f"{header}.{cls}", text + " of the roofline"))
    lines += attainable_lines(spec) + _link_lines(spec)
    if spec.path:
        lines.append(("file", spec.path))
    return lines


def render_hardware_show(spec: HardwareSpec, fmt: str = "table", *, width: int = 160) -> str:
    """One device with all its fields, in ``HARDWARE_SHOW_FORMATS``."""
    if fmt == "json":
        return dumps(spec.to_dict())
    if fmt == "toml":
        return dump_toml(spec)
    if fmt == "md":
        return md_pairs(spec.display_name, show_lines(spec), head="Field")
    if fmt != "table":
        raise unknown_format(fmt, HARDWARE_SHOW_FORMATS)
    grid = Table(box=box.SIMPLE, show_header=False, title=Text(spec.display_name))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for k, v in show_lines(spec):
        grid.add_row(*plain(k, v))
    return to_text(grid, width)


def _link_lines(spec: HardwareSpec) -> list[tuple[str, str]]:
    """The device's usual links ([interconnect]) with their figures and sources."""
    from modelmeter.hardware.links import link

    out = []
    for key, name in (("intra", spec.intra_link), ("inter", spec.inter_link)):
        if name:
            ln = link(name)
            out.append((f"interconnect.{key}", f"{name}: {ln.display_name}, "
                        f"{format_rate(ln.bandwidth, 'B/s')} per direction, latency "
                        f"{ln.latency * 1e6:g} us · {ln.source} ({ln.notes})"))  # fmt: skip
    return out
