"""``modelmeter hardware compare A B ...``: chips' figures side by side, each as a ratio to
the first chip's (dense peaks per dtype, bandwidth, memory, the ridge point, the launch
overhead), in table, md and json. A pure function of the specs."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from modelmeter.hardware.loader import format_si
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import HARDWARE_COMPARE_FORMATS, unknown_format
from modelmeter.render.hardware import PEAK_COLUMNS

COMPARE_SCHEMA = "modelmeter.hardware_compare/1"


def _peak(spec: HardwareSpec, dtypes: tuple[str, ...]) -> tuple[float | None, str]:
    """The matrix peak of the first dtype the chip has, else its vector peak (marked v)."""
    for dt in dtypes:
        if dt in spec.compute:
            return spec.compute[dt], ""
    for dt in dtypes:
        if dt in spec.vector:
            return spec.vector[dt], " v"
    return None, ""


def figures(spec: HardwareSpec) -> dict[str, tuple[float | None, str]]:
    """(value, unit mark) per figure, in display order."""
    out = {f"{name} peak": _peak(spec, dts) for name, dts in PEAK_COLUMNS}
    out["Bandwidth"] = (spec.bandwidth, "")
    out["Memory"] = (spec.capacity, "")
    bf16, _ = _peak(spec, ("bfloat16", "float16", "float32"))
    out["Ridge (BF16/FP16/FP32)"] = (None if bf16 is None else bf16 / spec.bandwidth, "")
    out["Launch overhead"] = (spec.kernel_overhead, "")
    return out


def _cell(name: str, value: float | None, mark: str, ref: float | None, first: bool) -> str:
    if value is None:
        return "-"
    if name == "Launch overhead":
        text = f"{value * 1e6:g} us"
    elif name.startswith("Ridge"):
        text = f"{value:.0f} FLOP/B"
    else:
        text = format_si(value) + mark
    if first or not ref:
        return text
    ratio = value / ref
    return f"{text} ({ratio:.2f}x)" if ratio >= 0.1 else f"{text} ({ratio:.2g}x)"


def render_hardware_compare(specs: Sequence[HardwareSpec], fmt: str = "table", *,
                            width: int = 160) -> str:  # fmt: skip
    """The chips side by side in one of ``HARDWARE_COMPARE_FORMATS``."""
    table = [figures(s) for s in specs]
    names = list(table[0])
    if fmt == "json":
        return json.dumps(_to_dict(specs, table), indent=2) + "\n"
    rows = []
    for name in names:
        ref = table[0][name][0]
        rows.append([name, *(_cell(name, t[name][0], t[name][1], ref, i == 0)
                             for i, t in enumerate(table))])  # fmt: skip
    header = ["Figure", *(s.name for s in specs)]
    legend = (
        f"Dense peaks in FLOP/s (OP/s for INT8) of the matrix units; `v`: the vector units' "
        f"(no matrix peak). Ratios to {specs[0].name} in brackets. Ridge: the intensity "
        "(FLOP per byte) above which a kernel is compute-bound."
    )
    if fmt == "md":
        out = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(specs)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out) + "\n\n" + legend + "\n"
    if fmt == "table":
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for i, h in enumerate(header):
            t.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*plain(*r))
        return to_text(t, width) + "\n".join(textwrap.wrap(legend, max(width, 40))) + "\n"
    raise unknown_format(fmt, HARDWARE_COMPARE_FORMATS)


def _to_dict(specs: Sequence[HardwareSpec], table: list[dict[str, tuple[float | None, str]]]
             ) -> dict[str, Any]:  # fmt: skip
    ref = table[0]
    return {
        "schema": COMPARE_SCHEMA,
        "chips": [s.name for s in specs],
        "ratios_to": specs[0].name,
        "figures": {
            name: {
                s.name: {
                    "value": t[name][0],
                    "vector": t[name][1] == " v",
                    "ratio": None if t[name][0] is None or not ref[name][0]
                    else t[name][0] / ref[name][0],  # fmt: skip
                }
                for s, t in zip(specs, table)
            }
            for name in ref
        },
    }


__all__ = ["COMPARE_SCHEMA", "figures", "render_hardware_compare"]
