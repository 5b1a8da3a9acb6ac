"""``analyze --fuse RULES``: what fusing kernels would buy, per module (analysis/fusion.py).
Parses and delegates; the renderer is render/fusion.py."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.commands.pricing_options import pricing
from modelmeter.errors import InputError

FUSE_HELP = (
    "with --hardware: instead of the report, what fusing kernels would buy per module (kernels, "
    "bytes, predicted latency unfused and fused). RULES: all (the default), none, or some of "
    "elementwise, conv-bn-act, attention, cast, reduction, rotary (docs/hardware.md, "
    "'Fusion what-if')"
)


def add_fuse_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fuse", nargs="?", const="all", default=None, metavar="RULES",
                   help=FUSE_HELP)


def check_fuse_args(args: argparse.Namespace, spec: Any) -> tuple[str, ...] | None:
    """The rules ``--fuse`` asks for (None: not asked), checked before the model loads."""
    if args.fuse is None:
        return None
    from modelmeter.analysis.fusion import parse_rules
    from modelmeter.render.formats import FUSION_FORMATS

    if spec is None:
        raise InputError("--fuse needs a chip: --hardware NAME|FILE, or --peak and --bandwidth")
    if args.format not in FUSION_FORMATS:
        raise InputError(f"--fuse writes {', '.join(FUSION_FORMATS)}, not {args.format}")
    if args.plot or args.plot_breakdown:
        raise InputError("--fuse draws no charts: leave out --plot and --plot-breakdown")
    return parse_rules(args.fuse)


def fusion_text(args: argparse.Namespace, report: Any, spec: Any, rules: tuple[str, ...]) -> str:
    from modelmeter.analysis.fusion import fusion_whatif
    from modelmeter.render.fusion import render_fusion

    whatif = fusion_whatif(report, spec, rules, **pricing(args))
    return render_fusion(whatif, args.format, depth=args.depth)


__all__ = ["add_fuse_option", "check_fuse_args", "fusion_text"]
