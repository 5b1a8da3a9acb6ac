"""How a roofline prices a model, as options every chip-taking command shares: ``--ideal``
(the datasheet roofline, every efficiency 1.0) and ``--runtime`` (eager, graphs, ort)."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.hardware.attainable import RUNTIMES


def add_pricing_options(g: Any) -> None:
    """``--ideal`` and ``--runtime`` into the chip options' group ``g``."""
    g.add_argument(
        "--ideal",
        action="store_true",
        help="the pure datasheet roofline (every efficiency 1.0) instead of the chip's "
        "attainable figures",
    )
    g.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=None,
        help="how the model runs: eager PyTorch (a host issue time per op; the default, "
        "'measure' of an ONNX file: ort), graphs (CUDA graphs / torch.compile: no per-op host "
        "time), ort (onnxruntime's per-op time)",
    )


def pricing(args: argparse.Namespace) -> dict[str, Any]:
    """The roofline's keyword arguments the chip options give (``--tf32``, ``--ideal``,
    ``--runtime``; eager when not given)."""
    return {"tf32": args.tf32, "ideal": args.ideal, "runtime": args.runtime or "eager"}


def chip_pricing(spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The runtime and the figures (attainable, datasheet, ideal) the options price ``spec``
    at, for a summary that names them (none without a chip)."""
    from modelmeter.analysis.roofline_notes import figures_of

    if spec is None:
        return {}
    return {"runtime": args.runtime or "eager", "figures": figures_of(spec, args.ideal)[0]}


__all__ = ["add_pricing_options", "chip_pricing", "pricing"]
