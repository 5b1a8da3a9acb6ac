"""The command line: assemble the parser from the command modules and run ``main``.

Each command is a module ``modelmeter/commands/NAME.py`` with ``register(subparsers,
common)``, which adds its parser and sets ``handler``; the options they share live in
``commands/options.py``. No counting and no rendering happens here.

Exit codes: 0 ok, 2 usage or input error (bad arguments, any ModelmeterError, an OSError
from the file system, the user's code calling ``sys.exit``), 130 interrupted, 1 internal
error (a bug); ``diff`` returns 3 when a budget (``--fail-if``, ``--budgets``) is broken.
Errors are one line on stderr (``modelmeter: error: ...``); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from modelmeter.commands.examples import add_examples
from modelmeter.commands.options import PROG, infer_format
from modelmeter.errors import ModelmeterError, first_line

# The commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "analyze",
    "ops",
    "measure",
    "calibrate",
    "hardware",
    "utilization",
    "diff",
    "train",
    "generate",
    "completion",
)


class UsageError(Exception):
    """A command-line usage error (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and library warnings",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bar and no informational lines on stderr (errors, warnings and "
        "the result still show)",
    )
    parser = _Parser(
        prog=PROG,
        description="Exact MACs, FLOPs, parameters, bytes and activation memory of a model.",
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"modelmeter.commands.{name}").register(sub, common)
    add_examples(parser)
    return parser


# The longest error line printed (a library's message can be kilobytes on one line).
MAX_ERROR_CHARS = 500


def _fail(message: str, debug: bool, code: int) -> int:
    if debug:
        traceback.print_exc()
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if len(first) > MAX_ERROR_CHARS:
        first = first[: MAX_ERROR_CHARS - 5] + " ..."
    print(f"{PROG}: error: {first}", file=sys.stderr)
    return code


def _os_error(e: OSError) -> str:
    """An OSError (a file the user named, the file system) as one line."""
    what = e.strerror or first_line(e)
    return f"{e.filename}: {what}" if e.filename is not None else what


def _exit_called(e: SystemExit) -> str:
    return (
        f"the model's code called sys.exit({e.code!r}); modelmeter stopped here (a model "
        "file or its factory should return a model, not exit)"
    )


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
    infer_format(args)  # -o report.json without -f writes JSON
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    try:
        return handler(args)
    except ModelmeterError as e:
        return _fail(str(e), debug, 2)
    except OSError as e:  # the environment or a file the user named, not a bug in modelmeter
        return _fail(_os_error(e), debug, 2)
    except SystemExit as e:  # no handler exits: the user's code (a model file, its forward) did
        return _fail(_exit_called(e), debug, 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns bugs into exit code 1
        hint = "" if debug else " (run with --debug for the traceback)"
        return _fail(f"internal error: {type(e).__name__}: {e}{hint}", debug, 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
