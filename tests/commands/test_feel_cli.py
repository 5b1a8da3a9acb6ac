"""How the command line feels: a progress bar on a terminal only, ``--quiet`` anywhere on the
line, no colour codes in a pipe (and none with NO_COLOR), examples in every ``--help``, and
shell completion generated from the parsers."""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from modelmeter.cli import build_parser, main
from modelmeter.commands import feel
from modelmeter.commands.completion import SHELLS, walk
from modelmeter.commands.examples import command_path, subparsers
from tests.cli_helpers import run

MODEL_CODE = "import torch.nn as nn\n\n\ndef f():\n    return nn.Sequential(nn.Linear(4, 8), nn.ReLU())\n"
# an SGR sequence that sets a colour (30-37, 90-97 foreground, 40-47 background, 38;/48; rich)
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|4[0-8]|9[0-7])(?:;[0-9;]*)?m")


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "m.py").write_text(MODEL_CODE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return "m.py:f"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal: the progress bar's console writes to this buffer."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100, color_system="truecolor")
    monkeypatch.setattr(feel, "stderr_console", lambda: console)
    return buf


def all_parsers() -> list[argparse.ArgumentParser]:
    out, todo = [], [build_parser()]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(subparsers(p))
    return out


# ---- examples in --help ----------------------------------------------------------------------


@pytest.mark.parametrize("parser", all_parsers(), ids=lambda p: p.prog)
def test_every_parser_has_examples_of_itself(parser: argparse.ArgumentParser) -> None:
    epilog = parser.epilog or ""
    assert "examples:\n" in epilog, f"'{parser.prog}' has no examples (commands/examples.py)"
    block = epilog.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    prefix = " ".join(["modelmeter", command_path(parser)]).strip() + " "
    assert lines, parser.prog
    for line in lines:
        assert (line + " ").startswith(prefix), f"{parser.prog}: {line!r} is not an example of it"


@pytest.mark.parametrize("parser", all_parsers(), ids=lambda p: p.prog)
def test_every_help_ends_with_its_examples(parser: argparse.ArgumentParser) -> None:
    # README: "every command's --help ends with examples". Before, analyze, measure,
    # utilization, train and diff ended with the list of model forms (or diff's notes).
    tail = (parser.epilog or "").rstrip().rsplit("examples:\n", 1)[-1]
    assert "\n\n" not in tail.strip("\n"), f"{parser.prog}: something follows its examples"


@pytest.mark.parametrize("path", [["--help"], ["hardware", "list", "--help"], ["calibrate", "-h"]])
def test_help_prints_the_examples_line_by_line(
    capsys: pytest.CaptureFixture[str], path: list[str]
) -> None:
    code, out, _ = run(capsys, *path)
    command = " ".join(["modelmeter", *path[:-1]])
    assert code == 0 and re.search(rf"\nexamples:\n  {command}[^\n]*\n  {command} ", out), out


def test_one_line_descriptions_are_still_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calibrate", "--help")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 100


# ---- --quiet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["-q", "hardware", "list"], ["hardware", "list", "--quiet"],
                                  ["--quiet", "ops", "conv"], ["ops", "-q", "conv"]])  # fmt: skip
def test_quiet_is_accepted_before_and_after_the_command(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 0 and out and err == ""


def test_quiet_drops_the_wrote_line_but_never_the_result(
    capsys: pytest.CaptureFixture[str], model: str
) -> None:
    argv = ["analyze", model, "-i", "1x4", "--hardware", "t4", "--plot", "r.png"]
    code, out, err = run(capsys, *argv)
    assert code == 0 and "modelmeter: wrote r.png" in err and "Linear" in out
    code, quiet_out, quiet_err = run(capsys, "-q", *argv)
    assert code == 0 and "wrote" not in quiet_err and quiet_out == out
    assert Path("r.png").stat().st_size > 0


def test_quiet_never_hides_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "-q", "hardware", "show", "no-such-chip")
    assert code == 2 and out == "" and err.startswith("modelmeter: error: ")


# ---- progress bar and colour -----------------------------------------------------------------


def test_piped_output_has_no_bar_and_no_colour(
    capsys: pytest.CaptureFixture[str], model: str
) -> None:
    code, out, err = run(capsys, "analyze", model, "-i", "1x4", "--hardware", "t4")
    assert code == 0 and "Linear" in out
    assert "\x1b[" not in out and "\x1b[" not in err and "analysing" not in err


def test_a_terminal_shows_the_bar(
    capsys: pytest.CaptureFixture[str], model: str, terminal: io.StringIO
) -> None:
    code, out, _ = run(capsys, "analyze", model, "-i", "1x4")
    assert code == 0 and "Linear" in out
    assert "analysing: building and analysing the model" in terminal.getvalue()
    assert "analysing" not in out  # the bar is on stderr, the result alone on stdout


def test_measure_bar_counts_the_calls(
    capsys: pytest.CaptureFixture[str], model: str, terminal: io.StringIO
) -> None:
    argv = ["measure", model, "-i", "1x4", "--warmup", "1", "--repeats", "2"]
    code, out, _ = run(capsys, *argv)
    shown = terminal.getvalue()
    # 1 warm-up + 2 timed calls = 3 steps
    assert code == 0 and "measuring: " in shown and "3/3" in shown and "measuring" not in out


def test_quiet_hides_the_bar_on_a_terminal(
    capsys: pytest.CaptureFixture[str], model: str, terminal: io.StringIO
) -> None:
    code, _, _ = run(capsys, "analyze", model, "-i", "1x4", "--quiet")
    assert code == 0 and terminal.getvalue() == ""


def test_terminal_table_honours_no_color(
    capsys: pytest.CaptureFixture[str], model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(feel, "stdout_console", lambda: Console(file=buf, force_terminal=True,
                                                               color_system="truecolor"))  # fmt: skip
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert run(capsys, "analyze", model, "-i", "1x4")[0] == 0
    assert COLOUR.search(buf.getvalue()) and "Linear" in buf.getvalue()
    buf.seek(0), buf.truncate()
    monkeypatch.setenv("NO_COLOR", "1")
    assert run(capsys, "analyze", model, "-i", "1x4")[0] == 0
    assert "Linear" in buf.getvalue() and not COLOUR.search(buf.getvalue())


# ---- completion ------------------------------------------------------------------------------


def test_completion_covers_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [command_path(p) for p in all_parsers() if command_path(p)]
    code, bash, _ = run(capsys, "completion", "bash")
    assert code == 0 and bash.endswith("complete -o filenames -F _modelmeter modelmeter\n")
    for path in paths:
        assert (f"'{path}'" if " " in path else path) in bash, path
    code, fish, _ = run(capsys, "completion", "fish")
    assert code == 0
    assert "complete -c modelmeter -f -n '__fish_use_subcommand' -a analyze" in fish
    assert "__fish_seen_subcommand_from hardware; and not __fish_seen_subcommand_from" in fish
    assert "-l format -s f -x -a 'table json csv md html latex'" in fish
    code, zsh, _ = run(capsys, "completion", "zsh")
    assert code == 0 and "bashcompinit" in zsh and zsh.endswith(bash)
    assert run(capsys, "completion", "tcsh")[0] == 2
    assert set(SHELLS) == {"bash", "zsh", "fish"}


def test_walk_sees_subcommands_and_choices() -> None:
    commands = {c.path: c for c in walk(build_parser())}
    assert list(commands[""].commands)[:2] == ["analyze", "ops"]
    assert set(commands["hardware"].commands) == {"list", "show", "compare"}
    assert commands["completion"].choices == ("bash", "zsh", "fish")
    fmt = next(o for o in commands["analyze"].options if "--format" in o.flags)
    assert fmt.choices == ("table", "json", "csv", "md", "html", "latex")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(("words", "expected"), [
    (["modelmeter", ""], {"analyze", "hardware", "completion"}),
    (["modelmeter", "hardware", ""], {"list", "show", "compare"}),
    (["modelmeter", "analyze", "x", "--form"], {"--format", "--formula"}),
    (["modelmeter", "analyze", "x", "-f", ""], {"table", "json", "csv", "md", "html", "latex"}),
    (["modelmeter", "hardware", "show", "h100-s"], {"h100-sxm"}),
    (["modelmeter", "analyze", "x", "--hardware", "a100-sxm-"],
     {"a100-sxm-40gb", "a100-sxm-80gb"}),
    (["modelmeter", "completion", "f"], {"fish"}),
])  # fmt: skip
def test_bash_completes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, words: list[str], expected: set[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "c.bash"
    script.write_text(capsys.readouterr().out, encoding="utf-8")
    quoted = " ".join(f"'{w}'" for w in words)
    probe = (f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
             'COMPREPLY=(); _modelmeter; printf "%s\\n" "${COMPREPLY[@]}"')  # fmt: skip
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          timeout=30, check=True)  # fmt: skip
    assert expected <= set(done.stdout.split()), done.stdout
    assert all(w.startswith(words[-1]) for w in done.stdout.split())


def test_the_bar_counts_steps_only_once_it_knows_them(terminal: io.StringIO) -> None:
    with feel.progress_bar(False, "sweeping") as progress:
        assert progress is not None
        assert "/?" not in terminal.getvalue()  # no "0/?" while the total is unknown
        progress("tracing seq=128", 3, 12)
    assert "sweeping: tracing seq=128" in terminal.getvalue() and "3/12" in terminal.getvalue()
    with feel.progress_bar(True, "sweeping") as progress:
        assert progress is None
