"""``modelmeter calibrate``: measure a device's attainable ceilings and write a hardware spec.

The file is written atomically (a temporary file renamed into place), only after every
figure was measured and the text was checked to load as a spec; an existing file is kept
unless ``--force``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from modelmeter.commands.options import PROG, device_arg, progress_bar
from modelmeter.errors import InputError
from modelmeter.render.emit import STDOUT, check_outputs, emit

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def spec_name(output: str, name: str | None) -> str:
    """The spec's name: ``name`` if given (must be valid), else the output file's stem,
    lowercased, with characters a spec name cannot hold turned into '-'."""
    if name is not None:
        if not _NAME_RE.match(name):
            raise InputError(
                f"invalid --name {name!r}: use lowercase letters, digits, '.', '_' or '-'"
            )
        return name
    stem = os.path.splitext(os.path.basename(output))[0].lower()
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")
    return cleaned or "calibrated"


def parse_dtypes(text: str | None) -> list[str] | None:
    """``"fp32,bf16"`` -> ["fp32", "bf16"] (None: the device's default list)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError("--dtypes is empty: give e.g. fp32,bf16")
    return items


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "calibrate",
        parents=[common],
        help="measure a device's attainable FLOP/s, bandwidth and overhead into a spec file",
        description="Measure attainable matmul FLOP/s per dtype, elementwise (vector) "
        "FLOP/s, copy bandwidth and per-op overhead on a device, and write them as a "
        "hardware spec (TOML) for --hardware: predictions then use attainable ceilings.",
    )
    p.add_argument(
        "--device", type=device_arg, default="cpu", help="cpu (default), cuda, cuda:N or mps"
    )
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the spec file to write")
    p.add_argument(
        "--dtypes",
        metavar="LIST",
        help="comma-separated dtypes, e.g. fp32,tf32,bf16,fp16 "
        "(default fp32 on CPU; fp32,tf32,bf16,fp16 on CUDA)",
    )
    p.add_argument("--name", help="the spec's name (default: the output file's stem)")
    p.add_argument("--quick", action="store_true", help="fewer, smaller measurements")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument(
        "--runtime", choices=("torch", "ort"), default="torch",
        help="whose kernels to time: torch (default) or ort (onnxruntime's, CPU, float32: "
        "a spec for --runtime ort predictions)",
    )
    p.add_argument("--threads", type=int, metavar="N",
                   help="onnxruntime's intra-op threads with --runtime ort (default 1)")
    p.set_defaults(handler=run)


def _threads(args: argparse.Namespace) -> int:
    """``--threads`` (1 when not given); InputError without --runtime ort or below 1."""
    if args.threads is None:
        return 1
    if args.runtime != "ort":
        raise InputError("--threads sets onnxruntime's threads: give it with --runtime ort "
                         "(the PyTorch calibration runs torch's threads: OMP_NUM_THREADS)")
    if args.threads < 1:
        raise InputError(f"--threads must be 1 or more, not {args.threads}")
    return int(args.threads)


def run(args: argparse.Namespace) -> int:
    from modelmeter.hardware import dump_toml, load_file
    from modelmeter.hardware.calibrate import calibrate
    from modelmeter.render.calibration import render_calibration

    out = args.output
    if out == STDOUT:
        raise InputError("calibrate writes a file: give -o FILE.toml")
    check_outputs([("-o", out)], [])
    if os.path.exists(out) and not args.force:
        raise InputError(f"{out} exists: pass --force to overwrite it")
    name = spec_name(out, args.name)
    dtypes = parse_dtypes(args.dtypes)
    threads = _threads(args)
    if args.runtime == "ort":  # refused before any timing: one line, exit 2
        from modelmeter.hardware.calibrate_ort_kernels import ort_or_refuse

        ort_or_refuse(args.device, dtypes)
    with progress_bar(args.quiet, "calibrating") as progress:
        cal = calibrate(args.device, dtypes, quick=args.quick, progress=progress,
                        runtime=args.runtime, threads=threads)
    # written only once it loads back as a spec: never a partial or unloadable file
    emit(dump_toml(cal.to_spec(name)), out, check=load_file)
    print(render_calibration(cal, out), end="")
    for warning in cal.warnings:
        print(f"{PROG}: warning: {warning}; calibrate again on an idle machine or with fewer "
              f"threads (OMP_NUM_THREADS=1)", file=sys.stderr)
    return 0
