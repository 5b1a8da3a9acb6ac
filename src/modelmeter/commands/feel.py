"""How the command line feels on a terminal and in a pipe: the progress bar (on stderr, only
when stderr is a terminal and ``--quiet`` is not given), the consoles (rich turns colour off
when the stream is not a terminal and honours ``NO_COLOR``), and informational lines
(``modelmeter: wrote FILE``) that ``--quiet`` suppresses. Errors, warnings and the result
are never suppressed.

Tests inject a terminal by replacing :func:`stderr_console` (e.g. with a
``Console(file=buf, force_terminal=True)``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

PROG = "modelmeter"


def stderr_console() -> Console:
    """The console progress is drawn on (a terminal test replaces this function)."""
    from rich.console import Console

    return Console(stderr=True)


def stdout_console() -> Console:
    """The console a table is printed to when stdout is a terminal (colour there, none with
    NO_COLOR)."""
    from rich.console import Console

    return Console()


def note(args: argparse.Namespace, message: str) -> None:
    """An informational line on stderr (``modelmeter: MESSAGE``); none with ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)


@contextlib.contextmanager
def progress_bar(quiet: bool, label: str) -> Iterator[Any]:
    """A transient rich progress bar on stderr (none when quiet or stderr is not a terminal);
    yields the ``progress(stage, done, total)`` callback, or None. Work that reports no steps
    still shows the bar pulsing with the label, so a long trace is visibly alive."""
    console = None if quiet else stderr_console()
    if console is None or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    class Steps(MofNCompleteColumn):  # "3/12", nothing while the number of steps is unknown
        def render(self, task: Any) -> Any:
            return super().render(task) if task.total is not None else ""

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        Steps(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{label}: building and analysing the model", total=None)

        def update(stage: str, done: int, total: int | None) -> None:
            bar.update(task, description=f"{label}: {stage}", completed=done, total=total)

        yield update
