"""The device check's results as rows and tables (bench/device_check.py): each measured
quantity beside its prediction on each spec, pred/meas, and the GPU check's built-in error;
written as device_check.json and device_check.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import device_parts as dp
import gpu_generation
import gpu_training

SPEC_ORDER = ("built-in", "calibrated")


def prediction_jobs(part: dict[str, Any]) -> list[tuple[str, Any]]:
    """(case label, spec -> prediction) for every case of a generation or training part."""
    setup = part["setup"]
    if "prompt" in setup:  # generation
        return [(f"{v} b{b}", lambda spec, v=v, b=b: gpu_generation.predict(setup, v, b, spec))
                for v, b in setup["cases"]]  # fmt: skip
    return [(gpu_training.label_of(c), lambda spec, c=c: gpu_training.predict(c, spec))
            for c in setup["cases"]]  # fmt: skip


def relocate(setup: dict[str, Any], folder: Path) -> None:
    """Write the setup's model configs into ``folder`` and point its sources there (a run's
    results replayed on another machine)."""
    if "prompt" in setup:
        setup["source"] = dp.config_source(setup["config"], folder, setup["model"])
    for case in setup.get("cases", []):
        if isinstance(case, dict):
            case["source"] = dp.config_source(case["config"], folder, case["model"])


def rows(part: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per case and quantity: measured, and per spec predicted and pred/meas."""
    setup = part.get("setup") or {}
    measured = part.get("measured") or {}
    gen = "prompt" in setup
    quantities = gpu_generation.QUANTITIES if gen else gpu_training.QUANTITIES
    out = []
    for case in measured.get("cases", []):
        label = f"{case['variant']} b{case['batch']}" if gen else gpu_training.label_of(case)
        preds = (part.get("predicted") or {}).get(label, {})
        for key, name in quantities:
            row: dict[str, Any] = {"case": label, "quantity": name, "unit": _unit(key),
                                   "measured": case.get(key)}  # fmt: skip
            for spec, p in preds.items():
                value = p.get(key) if isinstance(p, dict) else None
                row[spec] = value
                row[f"{spec} pred/meas"] = dp.ratio(value, row["measured"])
            out.append(row)
    return out


def _unit(key: str) -> str:
    return "GB" if key.endswith("bytes") else "ms"


def _num(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value / 1e9:.2f}" if unit == "GB" else f"{value * 1e3:.2f}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _specs_in(table: list[dict[str, Any]]) -> list[str]:
    seen = {k for r in table for k in r if k in SPEC_ORDER}
    return [s for s in SPEC_ORDER if s in seen]


def rows_md(table: list[dict[str, Any]]) -> str:
    if not table:
        return "(nothing measured)\n"
    specs = _specs_in(table)
    head = ["case", "quantity", "measured"] + [x for s in specs for x in (s, "pred/meas")]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in table:
        cells = [r["case"], f"{r['quantity']} ({r['unit']})", _num(r["measured"], r["unit"])]
        for s in specs:
            cells += [_num(r.get(s), r["unit"]), _ratio(r.get(f"{s} pred/meas"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def check_rows(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The GPU check per batch and dtype: median error and worst pred/meas of the built-in
    chip, models within 2x, and the calibrated spec's median error."""
    out = []
    for r in measured.get("summary", []):
        out.append({"batch": r["batch"], "dtype": r["dtype"], "models": r["models"],
                    "err built-in": r.get("err_built-in"),
                    "worst built-in": r.get("worst_built-in"),
                    "within 2x built-in": r.get("within2_built-in"),
                    "err calibrated": r.get("err_calibrated")})  # fmt: skip
    return out


def decoder_rows(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The decoder cases of the GPU check (gpt2@sN): measured and the built-in pred/meas."""
    return [{"case": f"{_short(c['model'])} b{c['batch']} {c['dtype']}", "measured_s": c["measured_s"],
             "built-in pred/meas": c["specs"].get("built-in", {}).get("ratio"),
             "calibrated pred/meas": c["specs"].get("calibrated", {}).get("ratio")}
            for c in measured.get("cases", []) if "@s" in c["model"]]  # fmt: skip


def _short(label: str) -> str:
    """``gpt2@s512``; a config file's stem for a decoder given as a path."""
    model, _, seq = label.partition("@s")
    return f"{Path(model).stem}@s{seq}"


def status(name: str, part: dict[str, Any]) -> str:
    """One line on a part: how it ended, its time, what it measured, what went wrong."""
    measured = part.get("measured") or {}
    bits = [f"{name}: {part.get('ended', 'not run')} after {part.get('seconds', 0):.0f} s",
            f"{measured.get('measurements', len(measured.get('cases') or []))} cases"]  # fmt: skip
    if measured.get("running"):
        bits.append(f"cut short in {measured['running']}")
    bits += [f"{len(measured.get(k) or [])} {k}" for k in ("skipped", "errors") if measured.get(k)]
    if part.get("error"):
        bits.append(f"failed: {part['error']}")
    return "; ".join(bits)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def check_md(measured: dict[str, Any]) -> str:
    lines = ["| batch | dtype | models | err built-in | worst built-in pred/meas | "
             "within 2x (built-in) | err calibrated |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in check_rows(measured):
        lines.append(f"| {r['batch']} | {r['dtype']} | {r['models']} | {_pct(r['err built-in'])}"
                     f" | {_ratio(r['worst built-in'])} | {r['within 2x built-in'] or '-'} | "
                     f"{_pct(r['err calibrated'])} |")  # fmt: skip
    dec = decoder_rows(measured)
    if dec:
        lines += ["", "| decoder case | measured (ms) | built-in pred/meas | calibrated pred/meas |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {d['case']} | {d['measured_s'] * 1e3:.2f} | "
                  f"{_ratio(d['built-in pred/meas'])} | {_ratio(d['calibrated pred/meas'])} |"
                  for d in dec]  # fmt: skip
    return "\n".join(lines) + "\n"


def part_text(name: str, part: dict[str, Any]) -> str:
    """A part's table and what happened to it (how it ended, skips, errors)."""
    measured = part.get("measured") or {}
    head = f"## {name}: {part.get('ended', 'not run')}, {part.get('seconds', 0):.0f} s"
    body = check_md(measured) if name == "check" else rows_md(rows(part))
    extra = []
    if measured.get("running"):
        extra.append(f"cut short while measuring: {measured['running']}")
    for key in ("skipped", "errors"):
        extra += [f"{key[:-1] if key == 'errors' else 'skipped'}: {x}"
                  for x in measured.get(key, [])]  # fmt: skip
    if part.get("error"):
        extra.append(f"part failed: {part['error']}")
    extra += part.get("notes", [])
    for label, preds in (part.get("predicted") or {}).items():
        extra += [f"prediction {label} on {k} failed: {p['error']}"
                  for k, p in preds.items() if isinstance(p, dict) and "error" in p]  # fmt: skip
    return "\n".join([head, "", body, *[f"- {x}" for x in extra], ""]) + "\n"


def text(doc: dict[str, Any]) -> str:
    head = [f"# modelmeter device check: {doc.get('device_name')}", "",
            f"built-in chip {doc.get('datasheet')}; budget {doc.get('budget_s')} s; "
            + ", ".join(f"{k} {v}" for k, v in (doc.get("versions") or {}).items()), ""]  # fmt: skip
    return "\n".join(head) + "\n" + "".join(
        part_text(n, doc["parts"][n]) for n in ("generation", "training", "check")
        if n in doc["parts"])  # fmt: skip


def save(out: Path, doc: dict[str, Any]) -> None:
    """device_check.json (the setups, measurements, predictions and rows) and .md."""
    for name, part in doc["parts"].items():
        if name != "check" and "setup" in part:
            part["rows"] = rows(part)
    dp.write_json(out / "device_check.json", doc)
    (out / "device_check.md").write_text(text(doc), encoding="utf-8")
