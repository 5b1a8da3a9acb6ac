"""The options audit: README's table of which command and output honours which option is
checked cell by cell. Every command x option x format either runs (exit 0) or is refused with
one line on stderr (exit 2), as the table says; ``--format``'s choices and ``--depth``'s
default are read from the parsers."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modelmeter.usecases.analyze
import modelmeter.usecases.measure  # noqa: F401  before analyze is patched: it binds the real one
from modelmeter.cli import build_parser, main
from modelmeter.report import Report

README = Path(__file__).resolve().parents[2] / "README.md"
OPTIONS = {
    "--depth": ["--depth", "2"],
    "--sort": ["--sort", "macs"],
    "--top": ["--top", "2"],
    "--columns": ["--columns", "params,macs"],
    "--no-collapse": ["--no-collapse"],
    "--units": ["--units", "iec"],
}
MODEL = """\
from torch import nn


def make():
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
"""


def audit_table() -> dict[str, dict[str, list[str]]]:
    """README's table: command -> column -> the formats listed (empty for '–')."""
    text = README.read_text(encoding="utf-8")
    body = text.split("<!-- options-audit")[1].split("<!-- /options-audit -->")[0]
    lines = [s for s in body.splitlines() if s.startswith("|")]
    header = [re.sub(r"`|\(.*\)", "", c).strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        command = re.sub(r"`|\(.*\)", "", cells[0]).strip()
        out[command] = {
            h: [] if c == "–" else [f.strip() for f in c.split(",")]
            for h, c in zip(header[1:], cells[1:])
        }
    return out


TABLE = audit_table()


def test_the_table_lists_every_command() -> None:
    assert list(TABLE) == [
        "analyze MODEL", "analyze M1 M2 …", "measure", "utilization", "ops", "hardware list",
        "hardware show", "calibrate",
    ]  # fmt: skip
    for row in TABLE.values():
        assert list(row) == ["--format", *OPTIONS]


def _subparser(words: list[str]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


@pytest.mark.parametrize("command", list(TABLE))
def test_format_choices_and_depth_default_are_the_parsers(command: str) -> None:
    words = command.split()[:2] if command.startswith("hardware") else command.split()[:1]
    parser = _subparser(words)
    fmt = _option(parser, "--format")
    listed = TABLE[command]["--format"]
    if command == "analyze MODEL":  # -f latex is the paper table's, also for one model
        listed = [*listed, "latex"]
    choices = list(fmt.choices) if fmt else []
    if command == "analyze M1 M2 …":  # -f html is one model's page: several are refused
        choices.remove("html")
    assert choices == listed
    depth = _option(parser, "--depth")
    if depth is not None:
        assert depth.default == 3  # the same default in every command
    if command != "analyze M1 M2 …":  # the same parser as one model's; refused at run time
        assert (depth is not None) == bool(TABLE[command]["--depth"])


@pytest.fixture
def commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handmade_factory: Callable[[], Report]
) -> dict[str, list[str]]:
    """The command line of each row, before the format and the option."""
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: handmade_factory())
    model = tmp_path / "tiny_model.py"
    model.write_text(MODEL)
    return {
        "analyze MODEL": ["analyze", "m"],
        "analyze M1 M2 …": ["analyze", "m1", "m2"],
        "measure": ["measure", f"{model}:make", "--input", "1x4", "--warmup", "0",
                    "--repeats", "1", "--per-module", "-q"],
        "utilization": ["utilization", "m", "--hardware", "t4", "--latency", "1ms"],
        "ops": ["ops"],
        "hardware list": ["hardware", "list"],
        "hardware show": ["hardware", "show", "t4"],
        "calibrate": ["calibrate", "-o", str(tmp_path / "never-written.toml")],
    }  # fmt: skip


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("command", list(TABLE))
def test_each_option_is_honoured_or_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
    commands: dict[str, list[str]],
    command: str,
    option: str,
) -> None:
    formats: list[Any] = TABLE[command]["--format"] or [None]
    honoured = TABLE[command][option]
    for fmt in formats:
        argv = [*commands[command], *(["-f", fmt] if fmt else []), *OPTIONS[option]]
        code = main(argv)
        out, err = capsys.readouterr()
        if fmt in honoured:
            assert code == 0, (argv, err)
        else:
            assert code == 2, (argv, out)
            assert len(err.strip().splitlines()) == 1 and option in err, (argv, err)
            assert "Traceback" not in err


def test_measure_depth_needs_the_per_module_table(
    capsys: pytest.CaptureFixture[str], commands: dict[str, list[str]]
) -> None:
    argv = [a for a in commands["measure"] if a != "--per-module"]
    assert main([*argv, "--depth", "2"]) == 2
    err = capsys.readouterr().err
    assert "--depth chooses the rows of the --per-module table" in err
    assert len(err.strip().splitlines()) == 1
