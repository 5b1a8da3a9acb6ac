"""Every command and every option of the command line, read from the parser itself (a new
option is covered the day it is added), given out-of-range, malformed, overflowing, empty,
negative, NaN/inf, very long and unicode values: each run ends in exit 0 (a report) or exit 2
with exactly one error line, never exit 1 and never a traceback, and writes no file but the
output it was asked for.

The model is a ``file.py:FACTORY`` returning ``nn.Linear(4, 2)``; ``measure`` runs it once
(--repeats 1 --warmup 0) and ``calibrate`` stops before its benchmarks (they are timed for
real in tests/hardware/test_calibrate.py)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelmeter.hardware.calibrate as calibrate_module
from modelmeter.cli import build_parser, main
from modelmeter.errors import ModelmeterError

MODEL = "m.py:f"
MODEL_CODE = "import torch.nn as nn\n\n\ndef f():\n    return nn.Linear(4, 2)\n"

# Values no option should turn into exit 1: empty, blank, zero, negative, overflowing,
# subnormal, NaN/inf, malformed shapes, very long, unicode digits and letters, paths.
BAD = (
    "",
    " ",
    "0",
    "-1",
    "-99999999999999999999",
    "99999999999999999999",
    "1" * 30,
    "1e-320",
    "1e400",
    "nan",
    "-inf",
    "1x",
    "100000x100000x100000x100000",
    "1x4:ü",
    "a=b=c",
    "x" * 5000,
    "ü∂🙂",
    "٣",  # an Arabic-Indic three: int() reads it
    "²",  # a superscript two: isdigit() says yes, int() says no
    "/",
    "-",
    "..",
)
PER_OPTION = 6  # values tried per option (rotating through BAD: every value is used)
OUTPUT_OPTIONS = {"--output", "--plot", "--plot-breakdown", "--plot-classes"}

# A command's valid run (positionals, options) that each value is tried against.
BASE: dict[tuple[str, ...], tuple[dict[str, str], list[str]]] = {
    ("analyze",): ({"model": MODEL}, ["-i", "1x4"]),
    ("ops",): ({}, []),
    ("measure",): ({"model": MODEL}, ["-i", "1x4", "--repeats", "1", "--warmup", "0", "-q"]),
    ("calibrate",): ({}, ["-o", "cal.toml", "--quick", "-q"]),
    ("hardware", "list"): ({}, []),
    ("hardware", "show"): ({"name": "t4"}, []),
    ("hardware", "compare"): ({"names": "t4"}, []),
    ("utilization",): ({"model": MODEL}, ["-i", "1x4", "--latency", "1ms"]),
    ("diff",): ({"old": MODEL, "new": MODEL}, ["-i", "1x4"]),
    ("train",): ({"model": MODEL}, ["-i", "1x4"]),
    ("generate",): ({"model": "hf:gpt2"}, ["--prompt", "4", "--new", "2"]),
    ("completion",): ({"shell": "bash"}, []),
}
CHIP = ["--hardware", "t4"]
# What an option needs beside it to be read at all (the chip options of utilization and the
# plots take the place of the default chip).
COMPANIONS = {
    "--peak": ["--bandwidth", "25.6G"],
    "--bandwidth": ["--peak", "1.7T"],
    "--peak-dtype": ["--peak", "1.7T", "--bandwidth", "25.6G"],
    "--plot-top": [*CHIP, "--plot-breakdown", "b.png"],
    "--plot": CHIP,
    "--plot-breakdown": CHIP,
    "--tf32": CHIP,
    "--plot-ops": CHIP,
}


def leaf_parsers(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(command words, parser) of every command that runs, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_parsers(sub, (*prefix, name))
            return
    yield prefix, parser


def _skip(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or (
        "--debug" in action.option_strings
    )


def cases() -> Iterator[tuple[tuple[str, ...], str, str | None]]:
    """(command, option or positional dest, value; None: a flag given alone)."""
    i = 0
    for command, parser in leaf_parsers(build_parser()):
        for action in parser._actions:
            if _skip(action):
                continue
            key = max(action.option_strings, key=len) if action.option_strings else action.dest
            if action.nargs == 0:
                yield command, key, None
                continue
            values = [BAD[(i + j) % len(BAD)] for j in range(PER_OPTION)]
            values += list(action.choices or ())  # every valid choice once
            i += PER_OPTION
            for value in values:
                yield command, key, value


def argv_for(command: tuple[str, ...], key: str, value: str | None) -> list[str]:
    positionals, options = BASE[command]
    positionals = dict(positionals)
    extra: list[str] = []
    if key in positionals:
        positionals[key] = value or ""
    elif value is None:
        extra = [key]
    else:
        extra = [f"{key}={value}"]  # '=': a value starting with '-' is still a value
    chip = COMPANIONS.get(key, CHIP if command == ("utilization",) else [])
    if command == ("utilization",) and key in ("--hardware", "--peak", "--bandwidth"):
        chip = COMPANIONS.get(key, [])
    tail = ["--", *positionals.values()] if positionals else []
    return [*command, *options, *chip, *extra, *tail]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "m.py").write_text(MODEL_CODE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def no_benchmarks(*args: object, **kwargs: object) -> None:
        raise ModelmeterError("benchmarks skipped in this test")

    monkeypatch.setattr(calibrate_module, "_ceilings", no_benchmarks)
    return tmp_path


def check_run(argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0, or 2 with one error line; no traceback; no file written but the outputs."""
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    code = main(argv)
    _, err = capsys.readouterr()
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("modelmeter: error: "), (argv, err)
        assert len(lines[0]) <= 520, (argv, err)
    allowed = {a.split("=", 1)[1] for a in argv if "=" in a and a.split("=")[0] in OUTPUT_OPTIONS}
    allowed |= {"cal.toml", "b.png"}  # the outputs of the base runs
    for path in workdir.rglob("*"):
        if path.is_file() and path not in before:
            assert path.name in allowed or str(path.relative_to(workdir)) in allowed, (argv, path)
        elif path in before:
            assert path.read_bytes() == before[path], (argv, path)
    for path in workdir.iterdir():  # outputs are removed: the next run starts clean
        if path.name != "m.py":
            path.unlink() if path.is_file() else None


def test_every_command_has_a_base_run() -> None:
    commands = {command for command, _ in leaf_parsers(build_parser())}
    assert commands == set(BASE), "add the new command's valid run to BASE"


def _id(case: tuple[tuple[str, ...], str, str | None]) -> str:
    command, key, value = case
    shown = "" if value is None else "=" + (value if len(value) <= 24 else value[:12] + "...")
    return f"{' '.join(command)} {key}{shown}"


CASES = list(cases())


@pytest.mark.parametrize(("command", "key", "value"), CASES, ids=[_id(c) for c in CASES])
def test_an_option_value_exits_0_or_2_with_one_line(
    command: tuple[str, ...],
    key: str,
    value: str | None,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_run(argv_for(command, key, value), workdir, capsys)


OPTIONS = [
    (command, key)
    for command, parser in leaf_parsers(build_parser())
    for action in parser._actions
    if not _skip(action) and action.nargs != 0
    for key in [max(action.option_strings, key=len) if action.option_strings else action.dest]
]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pick=st.sampled_from(OPTIONS),
    value=st.one_of(
        st.text(min_size=0, max_size=40).filter(lambda s: "\x00" not in s),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.lists(st.integers(-5, 10**12), min_size=1, max_size=5).map(
            lambda ds: "x".join(map(str, ds))
        ),
    ),
)
def test_generated_values_exit_0_or_2(
    pick: tuple[tuple[str, ...], str],
    value: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    command, key = pick
    check_run(argv_for(command, key, value), workdir, capsys)
