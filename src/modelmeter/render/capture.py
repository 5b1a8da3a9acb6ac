"""Rich renderables as plain text: the one place a console is captured into a string."""

from __future__ import annotations

import io

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.text import Text


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
    text_console(buf, width, color=color).print(renderable, crop=False)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def plain(*values: RenderableType) -> list[RenderableType]:
    """Table cells taken literally: a ``str`` becomes a ``Text`` so that rich reads no markup
    in it (``no [attainable] section`` keeps its brackets); other renderables pass through."""
    return [Text(v) if isinstance(v, str) else v for v in values]


class AtLeast:
    """``inner`` laid out at least ``width`` columns wide, wider than the console where it
    must be (a table whose numbers need more room than the terminal has). Printed with
    ``crop=False`` its lines run past the edge, and the terminal wraps them, rather than
    being cut: a cut ``3.64G`` would read ``3.64``."""

    def __init__(self, inner: RenderableType, width: int) -> None:
        self.inner, self.width = inner, width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from console.render(
            self.inner, options.update(max_width=max(options.max_width, self.width))
        )
