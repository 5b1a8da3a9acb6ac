"""Writing the user's files safely.

A regular file (or a new one) is written atomically: a temporary file beside the target,
renamed into place, so a failure never leaves a partial file (and never touches an existing
one). A symlink to a regular file is written the same way at the link's resolved target, so
the link stays a link. Anything else that exists — a FIFO, a character or block device such as
``/dev/null``, a terminal, the ``/dev/stdout`` family — is written in place (opened for writing,
never renamed over), so it stays what it is.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable

# Links here (``/dev/stdout`` -> ``/proc/self/fd/1`` -> a pipe, a terminal or the shell's
# redirection) are the process's own streams: written through, never resolved and replaced.
_STREAM_ROOTS = ("/dev/", "/proc/")


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``
    (keeping an existing file's permissions, else the umask's). On any error the temporary
    file is removed and ``path`` is left as it was."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def in_place(path: str) -> bool:
    """Whether ``path`` is written in place: it exists and is not a regular file (after
    following links), or it is one of the process's streams (``/dev/stdout``, ``/proc/...``)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(st.st_mode) or os.path.abspath(path).startswith(_STREAM_ROOTS)


def write_target(path: str) -> str:
    """The file an atomic write replaces: ``path``, or for a symlink its resolved target (the
    link is kept). Raises FileNotFoundError for a link to nothing (never followed)."""
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if not os.path.exists(target):
        raise FileNotFoundError(f"{path} is a link to {target}, which does not exist")
    return target


def write_file(path: str, write: Callable[[str], None], mode: str = "w") -> None:
    """Write ``path`` through ``write(name)``: in place for a device, FIFO or stream (see
    :func:`in_place`), else atomically at :func:`write_target`."""
    if in_place(path):
        write(path)
    else:
        write_atomic(write_target(path), write)


def write_text_atomic(path: str, text: str, check: Callable[[str], object] | None = None) -> None:
    """Write ``text`` to ``path`` (see :func:`write_file`); ``check(tmp)`` may validate the
    written file before it replaces ``path`` (a device or FIFO written in place has no file to
    check, and is not)."""

    def write(name: str) -> None:
        stream = in_place(name)  # appended to: a shell's ``>>`` behind /dev/stdout is kept
        with open(name, "a" if stream else "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if check is not None and not stream:
            check(name)

    write_file(path, write)
