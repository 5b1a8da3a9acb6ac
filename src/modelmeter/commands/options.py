"""The options commands share, defined once: the model (MODEL, --input, --batch, --dtype,
--dim, --convention, --mode), the output (--format/-o), the chip (--hardware or --peak with
--bandwidth, --peak-dtype, --tf32) and the charts of a roofline; argument types, the
progress bar and the quieting of library warnings.

Commands only check syntax here; what the words mean (a device that exists, a model that
loads) is checked by the use cases.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from modelmeter.commands.feel import progress_bar  # noqa: F401  (re-exported: commands import it here)
from modelmeter.commands.pricing_options import add_pricing_options
from modelmeter.errors import InputError
from modelmeter.inputs import InputRequest
from modelmeter.shapes import MAX_DIM
from modelmeter.units import BYTE_UNITS, byte_units

if TYPE_CHECKING:
    from modelmeter.hardware import HardwareSpec

PROG = "modelmeter"
TABLE_WIDTH = 160
DEVICE_CHOICES = ("cpu", "cuda", "mps")

MODEL_HELP = """\
the model to analyse, one of:
  torchvision:NAME          a torchvision model built from code (no weights)
  timm:NAME                 a timm model (needs timm)
  hf:NAME_OR_CONFIG         a transformers model built from its config on meta
  path/to/file.py:FACTORY   runs FACTORY() from that file (it is your code)
  file.onnx                 an ONNX file"""

TF32_HELP = (
    "float32 matmuls and convolutions use TF32: the roofline predicts them at the chip's "
    "TF32 tensor-core peak, and 'measure' on CUDA also runs them in TF32 (a PyTorch setting, "
    "refused for ONNX files)"
)


# ---- argument types ----------------------------------------------------------------------------


def count(minimum: int, what: str, maximum: int = MAX_DIM) -> Callable[[str], int]:
    """An argparse type: a whole number from ``minimum`` to ``maximum`` (``what`` names it in
    the error)."""

    def parse(text: str) -> int:
        shown = text if len(text) <= 40 else text[:37] + "..."
        digits = text.strip().lstrip("+-").lstrip("0")
        try:
            if len(digits) > 18 and digits.isdigit():  # out of range; int() of it is slow
                value = minimum - 1 if text.strip().startswith("-") else maximum + 1
            else:
                value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {shown!r}: give a whole number"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"invalid {what} {shown!r}: must be >= {minimum}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"invalid {what} {shown!r}: must be <= {maximum}")
        return value

    return parse


def depth_arg(text: str) -> int | None:
    """A module depth: a whole number >= 0, or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = count(0, "depth", 10**6)(text)
    except argparse.ArgumentTypeError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(
            f"invalid depth {shown!r}: give a whole number >= 0 or 'all'"
        ) from None
    return value


def device_arg(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it exists is the use case's check)."""
    base, _, index = text.strip().lower().partition(":")
    if base not in DEVICE_CHOICES or (index and (base != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(
            f"invalid device {text!r}: use {', '.join(DEVICE_CHOICES)} or cuda:N"
        )
    return text.strip().lower()


# ---- the model ---------------------------------------------------------------------------------


def add_model_arguments(
    p: argparse.ArgumentParser,
    *,
    analysis: bool = True,
    several: bool = False,
    positional: bool = True,
) -> None:
    """MODEL and the options that say how to build and feed it, shared by every command that
    takes a model; ``analysis`` adds the counting options (--convention, --mode); ``several``
    makes MODEL repeatable (``args.model`` is then a list); ``positional=False`` leaves MODEL
    to the command (``diff OLD NEW``)."""
    if several:
        p.add_argument(
            "model",
            metavar="MODEL",
            nargs="+",
            help="the model (forms below); several give one row each (the inputs options "
            "apply to every model)",
        )
    elif positional:
        p.add_argument("model", metavar="MODEL", help="the model (forms below)")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE[:DTYPE]",
        help="an input shape such as 1x3x224x224 or 1x128:int64; repeat for several inputs; "
        "NAME=SHAPE passes it as a keyword argument (default: the model's own example input)",
    )
    p.add_argument(
        "--batch",
        type=count(1, "batch"),
        metavar="N",
        help="replace the first dimension of every input",
    )
    p.add_argument(
        "--dtype",
        metavar="D",
        help="weights and floating inputs in this dtype (fp32, bf16, fp16, fp8, ...); "
        "in an analysis bytes change, counts do not",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=N",
        help="set a symbolic input dimension of an ONNX model, e.g. --dim batch=8 (repeatable)",
    )
    if analysis:
        p.add_argument(
            "--convention",
            choices=("exact", "2mac"),
            default="exact",
            help="FLOP convention: exact counts every multiply and add (default); "
            "2mac counts 2 x MACs and ignores bias adds",
        )
        p.add_argument(
            "--mode",
            choices=("auto", "meta", "real"),
            default="auto",
            help="meta tensors (no weight memory), real CPU tensors, or auto: meta, falling "
            "back to real when the model needs data (default auto)",
        )


def input_request(args: argparse.Namespace) -> InputRequest:
    """The model's inputs (--input, --batch, --dim, --dtype) parsed once; InputError on
    anything malformed, before any model loads."""
    return InputRequest.from_cli(args.input, batch=args.batch, dims=args.dim, dtype=args.dtype)


DEFAULT_DEPTH = 3  # every command's --depth default


class Given(argparse.Action):
    """Stores the value and remembers that the option was given (see :func:`given`), for an
    option whose default can also be given."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether an option stored with :class:`Given` was on the command line."""
    return dest in getattr(args, "given", ())


def add_depth_option(p: argparse.ArgumentParser, *args: Any) -> None:
    """``--depth N|all``: the module levels shown; ``add_depth_option(p, help)`` (the default
    is DEFAULT_DEPTH, as everywhere) or, as before, ``add_depth_option(p, default, help)``."""
    default, help = (DEFAULT_DEPTH, *args) if len(args) == 1 else args
    p.add_argument("--depth", type=depth_arg, default=default, action=Given, metavar="N", help=help)


# ---- the output --------------------------------------------------------------------------------


def add_output_options(
    p: argparse.ArgumentParser, formats: tuple[str, ...], what: str = "the result"
) -> None:
    """``--format/-f`` (one of ``formats``, the first the default) and ``-o/--output FILE``
    (without ``-f``, a FILE whose extension names one of ``formats`` is written in it: see
    :func:`infer_format`)."""
    p.add_argument("--format", "-f", choices=formats, default=formats[0], action=Given,
                   help="output format (default: the one -o FILE's extension names, else "
                   f"{formats[0]})")  # fmt: skip
    p.add_argument(
        "-o", "--output", metavar="FILE", help=f"write {what} to FILE ('-': standard output)"
    )
    p.set_defaults(output_formats=formats)


# -o FILE's extension -> the format it names
EXTENSION_FORMATS = {
    ".json": "json", ".csv": "csv", ".md": "md", ".html": "html", ".htm": "html",
    ".tex": "latex", ".toml": "toml",
}  # fmt: skip


def infer_format(args: argparse.Namespace) -> None:
    """Without ``--format``, ``-o report.json`` writes JSON (and .csv, .md, .html, .tex,
    .toml their formats) where the command has that format: a table written into a file
    named .json would be read back by nothing."""
    formats, out = getattr(args, "output_formats", None), getattr(args, "output", None)
    if not formats or not out or out == "-" or given(args, "format"):
        return
    suffix = os.path.splitext(out)[1].lower()
    if EXTENSION_FORMATS.get(suffix) in formats:
        args.format = EXTENSION_FORMATS[suffix]
        args.given = {*getattr(args, "given", ()), "format"}


def add_units_option(p: argparse.ArgumentParser) -> None:
    """``--units si|iec``: sizes in GB (10^9 B, the default) or GiB (2^30 B)."""
    p.add_argument("--units", choices=BYTE_UNITS, default="si", action=Given,
                   help="sizes in GB, 10^9 bytes (si, the default) or GiB, 2^30 bytes (iec); "
                   "formats with exact byte counts (json, csv, toml) refuse it")  # fmt: skip


def with_units(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` run with the sizes of ``--units`` in force (see ``units.byte_units``)."""

    def run(args: argparse.Namespace) -> int:
        with byte_units(getattr(args, "units", "si")):
            return handler(args)

    return run


# ---- the chip ----------------------------------------------------------------------------------


def add_chip_options(p: argparse.ArgumentParser) -> Any:
    """The chip options every command that takes a chip shares; returns their group (the
    roofline charts' options join it, ``commands.plot_options``)."""
    g = p.add_argument_group("hardware (roofline latency and utilization)")
    g.add_argument(
        "--hardware",
        "--hw",
        metavar="NAME|FILE",
        help="a device from 'modelmeter hardware list' or a hardware TOML file "
        "(e.g. from 'modelmeter calibrate')",
    )
    g.add_argument(
        "--peak",
        metavar="RATE",
        help="instead of --hardware: the chip's peak, e.g. 1.7T (OP/s in --peak-dtype)",
    )
    g.add_argument(
        "--bandwidth", metavar="RATE", help="with --peak: memory bandwidth in bytes/s, e.g. 25.6G"
    )
    g.add_argument(
        "--peak-dtype",
        default="int8",
        metavar="D",
        help="with --peak: the dtype the peak is for (default int8)",
    )
    g.add_argument("--tf32", action="store_true", help=TF32_HELP)
    add_pricing_options(g)
    return g


def _rate(text: str, option: str, kind: str) -> float:
    """``--peak`` (kind ``rate``: 1.7T, 1.7TOPS, 312TFLOPS) or ``--bandwidth`` (``bandwidth``:
    25.6G, 25.6GB/s, 800GiB/s) as a positive finite number."""
    from modelmeter.hardware.quantities import figure_rule, parse_quantity

    try:
        value = parse_quantity(text, kind)
    except ValueError as e:
        raise InputError(f"{option}: {e}") from None
    if not 0 < value < float("inf"):
        raise InputError(
            f"{option}: must be a positive {'rate' if kind == 'rate' else kind} (got {text!r})"
        )
    rule = figure_rule(value, kind)
    if rule:
        raise InputError(f"{option}: {text!r} {rule}")
    return value


def spec_from_args(args: argparse.Namespace) -> HardwareSpec | None:
    """The HardwareSpec the chip options name, None when none was asked for."""
    peak, bandwidth = getattr(args, "peak", None), getattr(args, "bandwidth", None)
    name = getattr(args, "hardware", None)
    if name and (peak is not None or bandwidth is not None):
        raise InputError("give either --hardware or --peak with --bandwidth, not both")
    if name:
        from modelmeter.hardware import load_spec

        return load_spec(name)
    if peak is not None or bandwidth is not None:
        if peak is None or bandwidth is None:
            raise InputError(
                "--peak and --bandwidth go together (e.g. --peak 1.7T --bandwidth 25.6G)"
            )
        from modelmeter.hardware import spec_from_peak

        return spec_from_peak(
            _rate(peak, "--peak", "rate"),
            _rate(bandwidth, "--bandwidth", "bandwidth"),
            dtype=args.peak_dtype,
        )
    return None


def warn_unverified(spec: HardwareSpec) -> None:
    """Say on stderr when a device's figures are not all verified."""
    if not spec.verified:
        print(
            f"{PROG}: warning: hardware {spec.name!r} has UNVERIFIED figures (see 'modelmeter "
            f"hardware show {spec.name}'); treat its predictions as estimates",
            file=sys.stderr,
        )


# ---- running -----------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_libraries(debug: bool) -> Iterator[None]:
    """Hide library warnings (deprecations in model builders) unless debugging."""
    if debug:
        yield
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (FutureWarning, UserWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        logger.setLevel(level)
