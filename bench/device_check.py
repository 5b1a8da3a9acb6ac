"""Every device check of issues 11, 12 and 15 in one command, within a time budget (not a test).

    PYTHONUNBUFFERED=1 python3 bench/device_check.py --out $OUT --budget 420   # a GPU
    python3 bench/device_check.py --device cpu --quick --out dc_out            # the script itself
    python3 bench/device_check.py --replay DIR --out NEWDIR                   # re-predict, no device

Three parts, each in its own process (a clean device, its own memory peak, and a deadline the
driver enforces by ending it; each rewrites its results after every case, so what a part
finished survives it being cut short):

1. ``generation`` (issue 11, bench/gpu_generation.py): transformers' ``generate`` of the
   Llama-3-8B preset (random weights, bfloat16): eager with the DynamicCache at batch 1 and
   16, the static cache eager and compiled (CUDA graphs) at batch 1; TTFT, per-token latency
   (first, mean, last), end-to-end and ``max_memory_allocated`` beside ``generate()``;
2. ``training`` (issue 12, bench/gpu_training.py): AdamW steps of GPT-2 and a 1B Llama
   shape in fp32 and bf16-mixed; ``max_memory_allocated`` and the median step time beside
   ``train()``;
3. ``check`` (issue 15, bench/gpu_check.py): calibration, torchvision models and the GPT-2
   decoder at batch 1 and 64 in float32 and bfloat16; the built-in chip's median and worst
   pred/meas.

Predictions are on the built-in chip guessed from the device name (``h100-sxm``, ``h200``;
``--datasheet`` to choose); the driver computes them while the part's process measures (the
analysis needs no device). With time left at the end, also on the spec the check calibrated.
Writes device_check.json and device_check.md (and each part's own files) into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import device_parts as dp  # noqa: E402 - puts src/ on sys.path
import device_report as report  # noqa: E402
import gpu_generation
import gpu_training

# each part's share of --budget; a part's deadline is the sum of the shares up to it, so time
# a part leaves unused goes to the next
# the last 6% are for the predictions on the calibrated spec (after the check)
PARTS = (("generation", 0.40), ("training", 0.14), ("check", 0.40))
CHECK_RESERVE = 35.0  # seconds of the check's share kept for its kernel profiles (GPU)


def _specs(sheet: str | None, folder: Path, calibrated: bool) -> dict[str, Any]:
    """The specs to predict with: the built-in chip, and the calibration the check stored."""
    from modelmeter.hardware import load_spec
    from modelmeter.hardware.loader import spec_from_dict

    specs: dict[str, Any] = {}
    if sheet:
        specs["built-in"] = load_spec(sheet)
    stored = dp.read_json(folder / "gpu_check.json") if calibrated else None
    if stored and stored.get("calibrated_spec"):
        specs["calibrated"] = spec_from_dict(stored["calibrated_spec"])
    return specs


def _child(cmd: list[str], deadline: float, work: Any = None) -> str:
    """Run a part's process, doing ``work`` (the predictions) meanwhile; end it at
    ``deadline``. Returns how it ended."""
    # its own process group: ending it ends what it started too (torch.compile's workers)
    proc = subprocess.Popen(cmd, start_new_session=True)
    if work is not None:
        work()
    try:
        rc = proc.wait(timeout=max(1.0, dp.left(deadline)))
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        return "ended at the part's deadline"
    return "finished" if rc == 0 else f"exit code {rc}"


def _predict_all(part: dict[str, Any], specs: dict[str, Any], until: float | None) -> None:
    """Predictions of every case of a part on every spec (stored in ``part["predicted"]``,
    keyed by case label then spec); stops at ``until``."""
    predicted = part.setdefault("predicted", {})
    for label, fn in report.prediction_jobs(part):
        for key, spec in specs.items():
            if key in predicted.get(label, {}):
                continue
            if until is not None and dp.left(until) < 0:
                part.setdefault("notes", []).append(
                    f"predictions on {key} not made in the budget: re-run with --replay")
                return
            try:
                predicted.setdefault(label, {})[key] = fn(spec)
            except Exception as e:  # noqa: BLE001 - a prediction failing is recorded
                predicted.setdefault(label, {})[key] = {"error": dp.error_text(e)}


def _measure_part(name: str, args: argparse.Namespace, doc: dict[str, Any], specs: dict[str, Any],
                  deadline: float) -> None:  # fmt: skip
    out = Path(args.out)
    setup = (gpu_generation.setup(out / "configs", args.device, args.quick, args.llm)
             if name == "generation" else gpu_training.setup(out / "configs", args.device,
                                                             args.quick))  # fmt: skip
    part = doc["parts"][name] = {"setup": setup, "started": time.time()}
    dp.write_json(out / f"{name}_setup.json", setup)
    result = out / f"{name}.json"
    cmd = [sys.executable, str(dp.BENCH / f"gpu_{name}.py"), str(out / f"{name}_setup.json"),
           str(result), "--device", args.device, "--deadline", str(deadline)]  # fmt: skip
    part["ended"] = _child(cmd, deadline + 5, lambda: _predict_all(part, specs, None))
    part["measured"] = dp.read_json(result) or {}
    part["seconds"] = time.time() - part["started"]


def _check_part(args: argparse.Namespace, doc: dict[str, Any], deadline: float) -> None:
    out = Path(args.out)
    left = dp.left(deadline)
    quick = args.quick or args.device == "cpu"
    reserve = 0.15 * left if quick else CHECK_RESERVE
    cmd = [sys.executable, str(dp.BENCH / "gpu_check.py"), "--device", args.device,
           "--out", str(out), "--budget", f"{max(10.0, left - reserve):.0f}",
           "--total", f"{max(10.0, left - 5):.0f}"]  # fmt: skip
    if doc["datasheet"]:
        cmd += ["--datasheet", doc["datasheet"]]
    if quick:  # one small model, and a tiny GPT-2 as the decoder
        tiny = dp.config_source({**dp.preset("gpt2"), **gpu_training.QUICK_GPT2},
                                out / "configs", "tiny-gpt2")  # fmt: skip
        cmd += ["--quick", "--models", "resnet18", "--batches", "1,2", "--decoder-seqs", "16",
                "--decoder", tiny.removeprefix("hf:")]  # fmt: skip
    part = doc["parts"]["check"] = {"started": time.time()}
    part["ended"] = _child(cmd, deadline + 20)
    stored = dp.read_json(out / "gpu_check.json") or {}
    part["measured"] = {k: stored.get(k) for k in ("summary", "skipped", "errors",
                                                   "datasheet_spec", "calibration_error")}
    part["measured"]["cases"] = [c for c in stored.get("cases", []) if "@s" in c["model"]]
    part["measured"]["measurements"] = len(stored.get("cases", []))
    part["seconds"] = time.time() - part["started"]


def _device(args: argparse.Namespace) -> tuple[str, str | None]:
    """The device's name and the built-in chip to predict with."""
    from gpu_check import guess_datasheet

    from modelmeter.frontends.torch.device import device_name, resolve_device
    from modelmeter.hardware import builtin_names

    name = device_name(resolve_device(args.device))
    guessed = guess_datasheet(name, builtin_names()) if args.device != "cpu" else "epyc-9654"
    return name, args.datasheet or guessed


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    t0 = time.time()
    name, sheet = _device(args)
    doc: dict[str, Any] = {"schema": "modelmeter.device_check/1", "device": args.device,
                           "device_name": name, "datasheet": sheet, "budget_s": args.budget,
                           "quick": args.quick, "versions": dp.versions(), "parts": {}}  # fmt: skip
    print(f"device {name}; built-in chip {sheet or 'none'}; budget {args.budget:.0f} s",
          flush=True)
    specs = _specs(sheet, out, calibrated=False)
    share = 0.0
    for part, fraction in PARTS:
        share += fraction
        deadline = t0 + share * args.budget
        if part not in args.parts:
            continue
        try:
            if part == "check":
                _check_part(args, doc, deadline)
            else:
                _measure_part(part, args, doc, specs, deadline)
        except Exception as e:  # noqa: BLE001 - a part failing must not stop the others
            doc["parts"].setdefault(part, {})["error"] = dp.error_text(e)
        report.save(out, doc)
        print(report.status(part, doc["parts"][part]), flush=True)
    _calibrated_predictions(doc, sheet, out, t0 + args.budget)
    doc["seconds"] = time.time() - t0
    report.save(out, doc)
    return doc


def _calibrated_predictions(doc: dict[str, Any], sheet: str | None, out: Path,
                            until: float | None) -> None:  # fmt: skip
    specs = _specs(sheet, out, calibrated=True)
    for part in ("generation", "training"):
        if part in doc["parts"] and "setup" in doc["parts"][part]:
            _predict_all(doc["parts"][part], specs, until)


def replay(args: argparse.Namespace) -> dict[str, Any]:
    """Predictions made again, from the stored results of a run (no device needed)."""
    src, out = Path(args.replay), Path(args.out)
    doc = dp.read_json(src / "device_check.json")
    if not doc:
        raise SystemExit(f"no device_check.json in {src}")
    stored = dp.read_json(src / "gpu_check.json")
    if stored:
        dp.write_json(out / "gpu_check.json", stored)
    for part in ("generation", "training"):
        p = doc["parts"].get(part)
        if p and "setup" in p:
            report.relocate(p["setup"], out / "configs")
            p["predicted"] = {}
    _calibrated_predictions(doc, args.datasheet or doc.get("datasheet"), out, None)
    report.save(out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny shapes (the CPU test of the script)")
    p.add_argument("--out", default=None, help="default: $OUT, else ./device_check_out")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for all the parts")
    p.add_argument("--parts", default="generation,training,check")
    p.add_argument("--llm", choices=("llama-3-8b", "llama-1b"), default="llama-3-8b",
                   help="the generation part's model (llama-1b compiles sooner)")
    p.add_argument("--datasheet", help="built-in chip to predict with (default: from the name)")
    p.add_argument("--replay", metavar="DIR", help="re-predict a run's stored results")
    args = p.parse_args(argv)
    args.out = str(Path(args.out or os.environ.get("OUT") or "device_check_out").resolve())
    # no network on a lent device: nothing may wait on the Hub (the parts inherit this)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args.parts = [s.strip() for s in args.parts.split(",") if s.strip()]
    doc = replay(args) if args.replay else run(args)
    print()
    print(report.text(doc), end="")
    print(f"wrote {args.out}/device_check.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
