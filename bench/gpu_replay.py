"""Re-predict the measurements of a stored GPU check with another spec (not a test).

A GPU is lent rarely; the roofline can change any day. This reads a ``gpu_check.json``
(e.g. ``bench/results/h100-gpu-check-run2.json``), analyses every measured case again on
this machine (the analysis runs on the meta device, so no GPU is needed), predicts it with
the current code on a spec, and prints the same median-error table as the check itself, so
a change to the roofline or the counting can be judged against real GPU timings:

    python bench/gpu_replay.py bench/results/h100-gpu-check-run2.json
    python bench/gpu_replay.py RESULTS.json --hardware my.toml --show-models

Without ``--hardware`` it uses the calibrated spec stored in the results (and, as the check
does, the same spec with launches in series and without per-dtype figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check import _request, calibrated_variants, source, summarise, table  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.hardware import load_spec  # noqa: E402
from modelmeter.hardware.loader import spec_from_dict  # noqa: E402


def specs_for(doc: dict[str, Any], hardware: str | None) -> dict[str, Any]:
    """The specs to predict with: ``--hardware``, else the stored calibrated spec and its
    variants."""
    if hardware:
        return {"given": load_spec(hardware)}
    if not doc.get("calibrated_spec"):
        raise SystemExit("the results hold no calibrated spec: pass --hardware")
    return calibrated_variants(spec_from_dict(doc["calibrated_spec"]))


def replay(doc: dict[str, Any], specs: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored cases with each spec's prediction from the current code."""
    import torch

    from modelmeter.frontends.torch.building import load_on_device, prepare

    cpu = torch.device("cpu")
    out: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for c in doc["cases"]:
        name = c["model"]
        if name not in models:
            models = {name: load_on_device(source(name), cpu).model}
        request = _request(name, c["dtype"], c["batch"])
        prepared = prepare(models[name], request, cpu)
        report = modelmeter.analyze(prepared.analysis_model, request)
        rows = {}
        for key, spec in specs.items():
            roof = roofline(report, spec, phase="forward", tf32=False)
            flops_only = report.total().cost.flops / roof.peak if roof.peak else float("inf")
            rows[key] = {
                "predicted_s": roof.latency_s,
                "ratio": roof.latency_s / c["measured_s"],
                "flops_only_s": flops_only,
            }
        out.append({**c, "specs": rows})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", help="a gpu_check.json")
    p.add_argument("--hardware", help="a spec name or .toml (default: the stored calibration)")
    p.add_argument("--show-models", action="store_true", help="pred/meas per case")
    args = p.parse_args()
    doc = json.loads(Path(args.results).read_text(encoding="utf-8"))
    specs = specs_for(doc, args.hardware)
    cases = replay(doc, specs)
    keys = list(specs)
    if args.show_models:
        for c in cases:
            ratios = "  ".join(f"{k} {c['specs'][k]['ratio']:.2f}" for k in keys)
            print(f"{c['model']:22} b{c['batch']:<3} {c['dtype']:9} "
                  f"{c['measured_s'] * 1e3:8.2f} ms  {ratios}")
        print()
    print(f"{doc['device_name']}, {doc['torch']}: {len(cases)} measurements re-predicted")
    print(table(summarise(cases, keys), keys), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
