"""Rich renderables as plain text: the one place a console is captured into a string."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType


def text_console(file: io.StringIO, width: int, *, color: bool = False) -> Console:
    """A console writing to ``file`` at a fixed width, ignoring the environment; without
    colour its output is plain and deterministic."""
    return Console(
        file=file,
        width=width,
        color_system="truecolor" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
        _environ={},
    )


def to_text(renderable: RenderableType, width: int, *, color: bool = False) -> str:
    """``renderable`` printed at ``width`` columns, trailing spaces stripped from each line."""
    buf = io.StringIO()
    text_console(buf, width, color=color).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"
