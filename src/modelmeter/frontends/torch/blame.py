"""Which module to blame for a failed run: the innermost module still running when the error
was raised. Module forward hooks registered with ``always_call`` run while an error propagates
(inside PyTorch's ``except`` block, so ``sys.exc_info()`` names it): the innermost module's
hook sees the error first. Matching by the exception's identity keeps an error that the model
caught and handled itself from being blamed on the wrong module; an error the root raises
after a child returned names the root, not the child."""

from __future__ import annotations

import sys

Entry = tuple[str, str, tuple]  # the module's name, type and input shapes


class Blame:
    def __init__(self) -> None:
        self.running: list[Entry | None] = []
        self.failure: tuple[BaseException, Entry | None] | None = None

    def enter(self, entry: Entry | None) -> None:
        self.running.append(entry)

    def exit(self) -> None:
        """A module's forward ended, normally or by an error going through it."""
        if not self.running:
            return
        entry = self.running.pop()
        error = sys.exc_info()[1]
        if error is not None and (self.failure is None or self.failure[0] is not error):
            self.failure = (error, entry)

    def failed_in(self, error: BaseException) -> Entry | None:
        """The innermost module running when ``error`` was raised (None: outside them all)."""
        if self.failure is not None and self.failure[0] is error:
            return self.failure[1]
        return None

    def clear(self) -> None:
        self.running.clear()
