"""The one way an output reaches the user: ``-`` (or nothing) is standard output, a path is
checked before any work (not a directory, its folder exists, not the model file) and written
atomically (a temporary file renamed into place)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from modelmeter.errors import InputError
from modelmeter.files import write_text_atomic

STDOUT = "-"


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


def output_path(path: str | None, model: str | None = None) -> str | None:
    """The file an ``-o`` option names, checked; None for standard output (``-`` or none)."""
    if path is None or path == STDOUT:
        return None
    check_output_path(path, model)
    return path


def check_plot_path(path: str, model: str | None = None) -> None:
    """A chart's file: a ``.png`` name, and a path :func:`check_output_path` accepts."""
    if not path.lower().endswith(".png"):
        raise InputError(f"plot file {path!r}: give a .png file name")
    check_output_path(path, model)


def emit(text: str, path: str | None, check: Callable[[str], object] | None = None) -> None:
    """Write ``text`` to ``path`` atomically (``check(tmp)`` may validate it first), or to
    standard output when ``path`` is None or ``-``."""
    if path is None or path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        write_text_atomic(path, text, check=check)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
