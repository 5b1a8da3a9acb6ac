"""The list of supported operators, generated from the registry (``modelmeter ops``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelmeter.registry import Formula, formulas, zero_cost_targets
from modelmeter.render.capture import plain, to_text
from modelmeter.render.formats import OPS_FORMATS, unknown_format
from modelmeter.render.jsonfmt import dumps


def _summary(doc: str) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _targets(f: Formula, frontend: str) -> list[str]:
    return list(f.targets.get(frontend, ()))


FRONTEND_NAMES = {"aten": "ATen", "onnx": "ONNX"}


def ops_data(
    counted: Sequence[Formula] | None = None, zero: dict[str, dict[str, str]] | None = None
) -> dict[str, object]:
    """Plain data of the registry: counted formulas and zero-cost targets per frontend."""
    counted = formulas() if counted is None else counted
    if zero is None:
        zero = {fe: zero_cost_targets(fe) for fe in FRONTEND_NAMES}
    return {
        "formulas": [
            {
                "name": f.name,
                "family": f.family,
                "aten": _targets(f, "aten"),
                "onnx": _targets(f, "onnx"),
                "doc": _summary(f.doc),
            }
            for f in counted
        ],
        "zero_cost": {fe: dict(targets) for fe, targets in zero.items()},
    }


def matching(
    text: str | None,
    counted: Sequence[Formula] | None = None,
    zero: dict[str, dict[str, str]] | None = None,
) -> tuple[list[Formula], dict[str, dict[str, str]]]:
    """The formulas and zero-cost targets whose name, family or targets contain ``text`` (any
    case); everything when ``text`` is None or empty."""
    counted = list(formulas() if counted is None else counted)
    if zero is None:
        zero = {fe: zero_cost_targets(fe) for fe in FRONTEND_NAMES}
    if not text:
        return counted, zero
    key = text.lower()

    def hit(*names: str) -> bool:
        return any(key in n.lower() for n in names)

    kept = [f for f in counted if hit(f.name, f.family, *(t for ts in f.targets.values() for t in ts))]
    return kept, {fe: {t: r for t, r in ts.items() if hit(t)} for fe, ts in zero.items()}


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _render_md(data: dict) -> str:
    out = [
        "# Supported operators",
        "",
        "Generated from the operator registry by `modelmeter ops --format md`; do not edit by hand.",
        "An op that is neither counted nor declared zero-cost is reported as unsupported, with its",
        "call count, and is never silently counted as zero.",
        "",
        f"## Counted ({len(data['formulas'])} formulas)",
        "",
        "| Formula | Family | ATen targets | ONNX targets | Description |",
        "|---|---|---|---|---|",
    ]
    for f in data["formulas"]:
        aten = ", ".join(f"`{t}`" for t in f["aten"]) or "-"
        onnx = ", ".join(f"`{t}`" for t in f["onnx"]) or "-"
        out.append(
            f"| {_md_cell(f['name'])} | {f['family']} | {aten} | {onnx} | {_md_cell(f['doc'])} |"
        )
    for fe, zero in data["zero_cost"].items():
        name = FRONTEND_NAMES.get(fe, fe)
        out += [
            "",
            f"## Zero-cost {name} ops ({len(zero)})",
            "",
            "Views, metadata and allocations: they move no data and do no arithmetic.",
            "",
            f"| {name} target | Why zero |",
            "|---|---|",
        ]
        out += [f"| `{t}` | {_md_cell(reason)} |" for t, reason in zero.items()]
    return "\n".join(out) + "\n"


def _render_table(data: dict, width: int) -> str:
    counted = Table(title="Counted operators", box=box.ROUNDED, header_style="bold", expand=True)
    counted.add_column("Formula", no_wrap=True)
    counted.add_column("Family", no_wrap=True)
    counted.add_column("ATen targets", overflow="fold", ratio=2)
    counted.add_column("ONNX targets", overflow="fold", ratio=1)
    counted.add_column("Description", overflow="fold", ratio=4)
    for f in data["formulas"]:
        counted.add_row(*plain(
            f["name"], f["family"], ", ".join(f["aten"]), ", ".join(f["onnx"]), f["doc"]
        ))
    tables: list = [counted]
    for fe, targets in data["zero_cost"].items():
        name = FRONTEND_NAMES.get(fe, fe)
        zero = Table(title=f"Zero-cost {name} ops", box=box.ROUNDED, header_style="bold")
        zero.add_column(f"{name} target", no_wrap=True)
        zero.add_column("Why zero", overflow="fold")
        for t, reason in targets.items():
            zero.add_row(*plain(t, reason))
        tables += [Text(""), zero]
    return to_text(Group(*tables), width)


def render_ops(
    fmt: str = "table",
    counted: Sequence[Formula] | None = None,
    zero: dict[str, dict[str, str]] | None = None,
    *,
    width: int = 160,
) -> str:
    """The supported operators as ``table`` (text), ``md`` or ``json``."""
    data = ops_data(counted, zero)
    if fmt == "json":
        return dumps(data)
    if fmt == "md":
        return _render_md(data)
    if fmt == "table":
        return _render_table(data, width)
    raise unknown_format(fmt, OPS_FORMATS, "ops format")
