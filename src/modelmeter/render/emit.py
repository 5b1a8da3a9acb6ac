"""The one way an output reaches the user: ``-`` (or nothing) is standard output, a path is
checked before any work and written by :func:`modelmeter.files.write_file` (atomically for a
regular file or a link to one; in place for a device, FIFO or stream, which stay what they
are).

The one rule of what may be written, checked before any work: no output is a directory, in a
missing directory, a link to nothing, the same file as one of the command's inputs (the model
and every file it refers to, a hardware file, a report) or the same file as another output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence

from modelmeter.errors import InputError
from modelmeter.files import write_text_atomic
from modelmeter.render.formats import PLOT_FORMATS, plot_format

STDOUT = "-"


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (the same real path, or hard links of one file)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output_path(path: str) -> None:
    """Refuse an output path that is a directory, in a missing directory or a link to nothing
    (that it is no input is :func:`check_outputs`' part)."""
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory")
    if os.path.islink(path) and not os.path.exists(path):
        raise InputError(
            f"cannot write {path}: it is a link to {os.readlink(path)!r}, which does not exist"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise InputError(f"cannot write {path}: directory {parent} does not exist")


def check_outputs(outputs: Sequence[tuple[str, str | None]], inputs: Iterable[str]) -> None:
    """The one rule, before any work: each ``(option, path)`` output passes
    :func:`check_output_path` and is neither the same file as an input nor as another
    output (standard output, ``-`` or None, is not a file)."""
    named = [(opt, p) for opt, p in outputs if p and p != STDOUT]
    inputs = [i for i in inputs if i and os.path.exists(i)]
    for i, (opt, path) in enumerate(named):
        check_output_path(path)
        for src in inputs:
            if same_file(src, path):
                raise InputError(f"refusing to write {opt} {path}: it is an input, {src}")
        for other, earlier in named[:i]:
            if same_file(earlier, path):
                raise InputError(
                    f"{other} and {opt} name the same file {path}: give each output its own file"
                )


def output_path(path: str | None) -> str | None:
    """The file an ``-o`` option names, checked; None for standard output (``-`` or none)."""
    if path is None or path == STDOUT:
        return None
    check_output_path(path)
    return path


def check_plot_path(path: str) -> None:
    """A chart's file: a ``.png``, ``.pdf`` or ``.svg`` name, and a path
    :func:`check_output_path` accepts."""
    if plot_format(path) is None:
        names = ", ".join(f".{f}" for f in PLOT_FORMATS)
        raise InputError(f"plot file {path!r}: give a file name ending in one of {names}")
    check_output_path(path)


def emit(text: str, path: str | None, check: Callable[[str], object] | None = None) -> None:
    """Write ``text`` to ``path`` (``check(tmp)`` may validate it first), or to standard
    output when ``path`` is None or ``-``."""
    if path is None or path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        write_text_atomic(path, text, check=check)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
