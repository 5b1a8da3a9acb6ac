"""The command line: parse, call the public API, render. No counting happens here.

Exit codes: 0 ok, 2 usage or input error (bad arguments, any ModelmeterError), 1 internal
error. Errors are one line on stderr (``modelmeter: error: ...``); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from modelmeter import __version__
from modelmeter.errors import InputError, ModelmeterError
from modelmeter.files import write_text_atomic

PROG = "modelmeter"
DEFAULT_DEPTH = 3
FORMATS = ("table", "json", "csv", "md")
OPS_FORMATS = ("table", "md", "json")
TABLE_WIDTH = 160

MODEL_HELP = """\
the model to analyse, one of:
  torchvision:NAME          a torchvision model built from code (no weights)
  timm:NAME                 a timm model (needs timm)
  hf:NAME_OR_CONFIG         a transformers model built from its config on meta
  path/to/file.py:FACTORY   runs FACTORY() from that file (it is your code)
  file.onnx                 an ONNX file"""


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _depth(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid depth {text!r}: give a whole number >= 0 or 'all'"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid depth {text!r}: must be >= 0 (or 'all')")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid batch {text!r}: give a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid batch {text!r}: must be >= 1")
    return value


# Further commands, each a module modelmeter/commands/NAME.py with
# ``register(subparsers, common)`` that adds its parser and sets ``handler``.
COMMAND_MODULES: tuple[str, ...] = ("measure", "calibrate", "hardware", "utilization")


def add_model_arguments(p: argparse.ArgumentParser, *, analysis: bool = True) -> None:
    """MODEL and the options that say how to build and feed it, shared by every command that
    takes a model; ``analysis`` adds the counting options (--convention, --mode)."""
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
        "--batch", type=_positive, metavar="N", help="replace the first dimension of every input"
    )
    p.add_argument(
        "--dtype",
        metavar="D",
        help="weights and floating inputs in this dtype (fp32, bf16, fp16, fp8, ...); "
        "in an analysis bytes change, counts do not",
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


def model_inputs(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Positional and named --input values, checked (with --dtype) before any model loads."""
    from modelmeter.units import canonical_dtype

    positional, named = split_inputs(args.input)
    if args.dtype is not None:
        try:
            canonical_dtype(args.dtype)
        except ValueError as e:
            raise InputError(str(e)) from None
    if positional or named:
        from modelmeter.shapes import parse_shape

        for text in (*positional, *named.values()):
            parse_shape(text)
    return positional, named


def analyze_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    """``modelmeter.analyze`` with the model options of ``add_model_arguments``."""
    import modelmeter

    positional, named = model_inputs(args)
    with _quiet_libraries(args.debug):
        return modelmeter.analyze(
            args.model,
            positional or None,
            kwargs=named or None,
            mode=args.mode,
            convention=args.convention,
            dtype=args.dtype,
            batch=args.batch,
            **extra,
        )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and library warnings",
    )
    parser = _Parser(
        prog=PROG,
        description="Exact MACs, FLOPs, parameters, bytes and activation memory of a model.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    a = sub.add_parser(
        "analyze",
        parents=[common],
        help="analyse a model and print its report",
        description="Analyse one forward pass of a model and report what it costs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    add_model_arguments(a)
    a.add_argument(
        "--depth",
        type=_depth,
        default=DEFAULT_DEPTH,
        metavar="N",
        help=f"module levels shown by table, csv and md (default {DEFAULT_DEPTH}; 'all' for "
        "every level); a row at the cut shows its whole subtree",
    )
    a.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format")
    a.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE ('-': standard output)"
    )
    a.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=N",
        help="set a symbolic input dimension of an ONNX model, e.g. --dim batch=8 (repeatable)",
    )
    a.add_argument(
        "--backward",
        action="store_true",
        help="also trace and count the backward pass (one training step); phases are kept apart",
    )
    from modelmeter.commands.hardware import add_hardware_options

    add_hardware_options(a, plots=True)
    a.set_defaults(handler=_cmd_analyze)

    o = sub.add_parser(
        "ops",
        parents=[common],
        help="list the supported operators",
        description="List the operators modelmeter counts and those it declares zero-cost.",
    )
    o.add_argument("--format", "-f", choices=OPS_FORMATS, default="table", help="output format")
    o.add_argument("-o", "--output", metavar="FILE", help="write the list to FILE")
    o.set_defaults(handler=_cmd_ops)
    for name in COMMAND_MODULES:
        importlib.import_module(f"modelmeter.commands.{name}").register(sub, common)
    return parser


# ---- helpers -----------------------------------------------------------------------------------


def parse_dims(values: Sequence[str]) -> dict[str, int]:
    """``["batch=8", "seq=128"]`` -> {"batch": 8, "seq": 128}; InputError on anything else."""
    dims: dict[str, int] = {}
    for text in values:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value.isdigit() or int(value) < 1:
            raise InputError(f"malformed --dim {text!r}: write NAME=N with N a positive integer")
        dims[name] = int(value)
    return dims


def split_inputs(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``["1x3x8x8", "mask=1x8:bool"]`` -> (["1x3x8x8"], {"mask": "1x8:bool"})."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for value in values:
        name, eq, shape = value.partition("=")
        if not eq:
            positional.append(value)
            continue
        name = name.strip()
        if not name or name[0].isdigit() or any(c.isspace() for c in name):
            raise InputError(
                f"malformed input {value!r}: NAME=SHAPE needs an input name "
                "(a keyword argument, or an ONNX graph input such as input.1)"
            )
        if name in named:
            raise InputError(f"input {name!r} is given twice")
        named[name] = shape.strip()
    return positional, named


def _model_files(spec: str) -> list[str]:
    out = []
    for cand in (spec, spec.rpartition(":")[0]):
        if cand and os.path.isfile(cand):
            out.append(cand)
    return out


def check_output_path(path: str, model: str | None = None) -> None:
    """Refuse an output path that is a directory, in a missing directory, or the model file."""
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {path}: directory {parent} does not exist")
    for cand in _model_files(model or ""):
        same = os.path.realpath(cand) == os.path.realpath(path)
        if same or (os.path.exists(path) and os.path.samefile(cand, path)):
            raise InputError(f"refusing to write the report over the model file {cand}")


@contextlib.contextmanager
def _quiet_libraries(debug: bool) -> Iterator[None]:
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


def _emit(text: str, output: str | None) -> None:
    if output:
        try:
            write_text_atomic(output, text)
        except OSError as e:
            raise InputError(f"cannot write {output}: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


# ---- commands ----------------------------------------------------------------------------------


def _cmd_analyze(args: argparse.Namespace) -> int:
    if args.output == "-":
        args.output = None
    model_inputs(args)  # fail on a malformed shape or dtype before loading the model
    if args.output:
        check_output_path(args.output, args.model)
    from modelmeter.commands import hardware as hw

    spec = hw.spec_from_args(args)  # a bad hardware file fails before the model loads
    hw.check_plot_args(args, spec)

    import modelmeter
    from modelmeter.render import print_table, render

    report = analyze_from_args(
        args,
        backward=args.backward,
        **({"dims": parse_dims(args.dim)} if args.dim else {}),
    )
    roof = modelmeter.roofline(report, spec, tf32=args.tf32) if spec is not None else None
    to_terminal = args.format == "table" and not args.output and sys.stdout.isatty()
    if to_terminal:
        from rich.console import Console

        print_table(report, args.depth, Console(), roofline=roof)
    else:
        text = render(report, args.format, args.depth, width=TABLE_WIDTH, roofline=roof)
        _emit(text, args.output)
        missing = report.unsupported
        if missing:
            print(
                f"{PROG}: warning: {len(missing)} unsupported op(s), "
                f"{sum(missing.values())} call(s), NOT COUNTED: {', '.join(missing)}",
                file=sys.stderr,
            )
    if roof is not None:
        if not roof.spec.verified:
            print(f"{PROG}: warning: {hw.unverified_text(roof.spec)}", file=sys.stderr)
        for path in hw.write_plots(report, roof, args):
            print(f"{PROG}: wrote {path}", file=sys.stderr)
    return 0


def _cmd_ops(args: argparse.Namespace) -> int:
    from modelmeter.render.ops import render_ops

    if args.output == "-":
        args.output = None
    if args.output:
        check_output_path(args.output)
    _emit(render_ops(args.format, width=TABLE_WIDTH), args.output)
    return 0


# ---- entry point -------------------------------------------------------------------------------


def _fail(message: str, debug: bool, code: int) -> int:
    if debug:
        traceback.print_exc()
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"{PROG}: error: {first}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        return _fail(str(e), False, 2)
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    handler: Any = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    args.debug = getattr(args, "debug", False)
    try:
        return handler(args)
    except ModelmeterError as e:
        return _fail(str(e), debug, 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns bugs into exit code 1
        hint = "" if debug else " (run with --debug for the traceback)"
        return _fail(f"internal error: {type(e).__name__}: {e}{hint}", debug, 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
