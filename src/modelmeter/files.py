"""Writing the user's files safely: a temporary file beside the target, renamed into place,
so a failure never leaves a partial file (and never touches an existing one)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable


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


def write_text_atomic(path: str, text: str, check: Callable[[str], object] | None = None) -> None:
    """Write ``text`` atomically; ``check(tmp)`` may validate the written file first."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if check is not None:
            check(tmp)

    write_atomic(path, write)
