"""Running the command line in a test: the exit code and what it printed, and the one-line
error every bad input must give."""

from __future__ import annotations

import pytest

from modelmeter.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``modelmeter ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The single ``modelmeter: error: ...`` line of ``err`` (no traceback, nothing else)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modelmeter: error: ") and "Traceback" not in err, err
    return lines[0]
