"""Which files a piece of code opens, through Python's audit hooks (``open`` is raised by
``open``, ``io.open`` and ``os.open``; renames, removals and mode changes by their ``os``
functions). A hook cannot be removed, so one is installed per process and records only while
an :func:`audit` block is active. ONNX opens external data files in C++ (no audit event), so
its one entry point for that, ``external_data_helper._open_external_data_fd``, is wrapped
too."""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class Opened:
    """What was opened (real paths) while auditing, and what was renamed or removed."""

    read: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    changed: list[tuple[str, ...]] = field(default_factory=list)  # (event, path, ...)


_active: list[Opened] = []


def _path(p: object) -> str | None:
    if isinstance(p, (str, bytes, os.PathLike)):
        return os.path.realpath(os.fsdecode(p))
    return None  # a file descriptor, or nothing


def _hook(event: str, args: tuple) -> None:
    if not _active:
        return
    rec = _active[-1]
    if event == "open":
        path = _path(args[0])
        if path is None:
            return
        mode, flags = args[1], args[2] if len(args) > 2 else 0
        writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)
        (rec.written if writes else rec.read).append(path)
    elif event in ("os.rename", "os.remove", "os.rmdir", "os.chmod", "os.truncate"):
        paths = [p for p in (_path(a) for a in args[:2]) if p is not None]
        rec.changed.append((event, *paths))


_installed: list[bool] = []


@contextlib.contextmanager
def audit() -> Iterator[Opened]:
    """Record the files opened inside the block."""
    if not _installed:
        sys.addaudithook(_hook)
        _installed.append(True)
    rec = Opened()
    _active.append(rec)
    helper = sys.modules.get("onnx.external_data_helper")
    real_open = getattr(helper, "_open_external_data_fd", None)
    if real_open is not None:

        def open_fd(base_dir: str, location: str, *args: object, **kw: object) -> int:
            path = os.path.realpath(os.path.join(base_dir, location))
            (rec.read if (args[1:2] or [kw.get("read_only", True)])[0] else rec.written).append(
                path
            )
            return real_open(base_dir, location, *args, **kw)

        helper._open_external_data_fd = open_fd  # type: ignore[union-attr]
    try:
        yield rec
    finally:
        _active.remove(rec)
        if real_open is not None:
            helper._open_external_data_fd = real_open  # type: ignore[union-attr]


def install_roots() -> list[str]:
    """Folders that imports and libraries read from: Python's install, the packages, the
    source tree on ``sys.path``, and the kernel's pseudo-files."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()}
    roots.update(p for p in sys.path if p and os.path.isdir(p))
    roots.update(("/proc", "/sys", "/dev", "/etc", "/usr"))
    return sorted({os.path.realpath(r) for r in roots})


def outside(paths: list[str], allowed: list[str]) -> list[str]:
    """The paths in none of the ``allowed`` folders."""
    real = [os.path.realpath(a) for a in allowed]
    return sorted(
        {p for p in paths if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in real)}
    )
