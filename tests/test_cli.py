"""The command line: exit codes, one-line errors, delegation to the API, files written whole."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import one_error, run
from render_checks import check_csv, check_json, check_markdown

import modelmeter
import modelmeter.usecases.analyze
from modelmeter.errors import InputError, ModelNotFound
from modelmeter.inputs import InputRequest
from modelmeter.inputs import split_named as split_inputs
from modelmeter.render.ops import render_ops
from modelmeter.report import Report


class FakeAnalyze:
    """Stands in for the ``analyze`` use case: records the call, returns a hand-built report."""

    def __init__(
        self,
        make: Callable[[], Report],
        warn: bool = False,
        exc: BaseException | None = None,
    ) -> None:
        self.make = make
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.warn = warn
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Report:
        self.calls.append((args, kwargs))
        if self.warn:
            warnings.warn("a builder's deprecation", FutureWarning, stacklevel=1)
            warnings.warn("a builder's remark", UserWarning, stacklevel=1)
        if self.exc is not None:
            raise self.exc
        return self.make()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, handmade_factory: Callable[[], Report]) -> FakeAnalyze:
    f = FakeAnalyze(handmade_factory)
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", f)
    return f


# ---- delegation -----------------------------------------------------------------------------


def test_arguments_are_passed_to_analyze(capsys: pytest.CaptureFixture[str], fake: FakeAnalyze):
    code, out, err = run(
        capsys,
        "analyze",
        "torchvision:whatever",
        "--input",
        "1x3x8x8",
        "--input",
        "mask=1x8:bool",
        "-i",
        "2x4:int64",
        "--batch",
        "2",
        "--dtype",
        "bf16",
        "--convention",
        "2mac",
        "--mode",
        "meta",
        "--format",
        "json",
        "--backward",
    )
    assert code == 0
    (args, kwargs), *_ = fake.calls
    request = InputRequest.from_cli(
        ["1x3x8x8", "2x4:int64", "mask=1x8:bool"], batch=2, dtype="bf16"
    )
    assert args == ("torchvision:whatever", request)
    assert kwargs == {"mode": "meta", "convention": "2mac", "backward": True}
    assert json.loads(out)["model"] == "handmade"
    # the hand-built report has an unsupported op: said on stderr when not in a table
    assert "aten.frobnicate" in err and "NOT COUNTED" in err


def test_defaults_leave_inputs_to_the_model(capsys: pytest.CaptureFixture[str], fake: FakeAnalyze):
    code, out, _ = run(capsys, "analyze", "torchvision:whatever")
    assert code == 0
    (args, kwargs), *_ = fake.calls
    assert args == ("torchvision:whatever", InputRequest())
    assert kwargs == {"mode": "auto", "convention": "exact", "backward": False}
    assert "NOT COUNTED" in out and "handmade" in out  # the table, not a terminal: no colour
    assert "\x1b[" not in out


def test_split_inputs() -> None:
    assert split_inputs(["1x3", "a=2x4:int64", "b = 5"]) == (["1x3"], {"a": "2x4:int64", "b": "5"})
    with pytest.raises(InputError):
        split_inputs(["1x=3"])
    # ONNX graph inputs may have names that are not Python identifiers
    assert split_inputs(["input.1=1x3x8x8"]) == ([], {"input.1": "1x3x8x8"})
    with pytest.raises(InputError, match="twice"):
        split_inputs(["a=1", "a=2"])


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_depth_reaches_the_renderer(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, fmt: str
) -> None:
    code, out, _ = run(capsys, "analyze", "m", "--format", fmt, "--depth", "1")
    assert code == 0
    # depth 1 shows Net, body, head but not body.0 / body.1
    assert "body.0" not in out
    {"csv": check_csv, "md": check_markdown}[fmt](out)


def test_json_has_every_module_and_refuses_depth(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze
) -> None:
    code, out, _ = run(capsys, "analyze", "m", "--format", "json")
    assert code == 0 and "body.0" in out
    check_json(out)
    code, out, err = run(capsys, "analyze", "m", "--format", "json", "--depth", "1")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--depth does not apply to -f json" in err


def test_library_warnings_hidden_unless_debug(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze
) -> None:
    fake.warn = True
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, _, err = run(capsys, "analyze", "m", "--format", "csv")
    assert code == 0 and seen == [] and "deprecation" not in err
    with pytest.warns(FutureWarning, match="deprecation"), pytest.warns(UserWarning):
        code, _, err = run(capsys, "analyze", "m", "--format", "csv", "--debug")
    assert code == 0


# ---- errors and exit codes ------------------------------------------------------------------


def test_unknown_model_is_exit_2_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "analyze", "torchvision:no_such_model_here")
    assert code == 2 and out == ""
    assert "no_such_model_here" in one_error(err)


def test_model_error_from_the_api_is_exit_2(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze
) -> None:
    fake.exc = ModelNotFound("no model 'x'")
    code, _, err = run(capsys, "analyze", "x")
    assert code == 2 and one_error(err) == "modelmeter: error: no model 'x'"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--input", "1xfoo"], "malformed input shape '1xfoo'"),
        (["--input", "=1x3"], "malformed input"),
        (["--input", "1x3:fp7"], "unknown dtype 'fp7'"),
        (["--dtype", "fp7"], "unknown dtype 'fp7'"),
        (["--depth", "-1"], "invalid depth '-1'"),
        (["--depth", "deep"], "invalid depth 'deep'"),
        (["--batch", "0"], "invalid batch '0'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--convention", "3mac"], "invalid choice: '3mac'"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_usage_and_input_errors_are_exit_2(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, "analyze", "torchvision:resnet18", *argv)
    assert code == 2 and out == ""
    assert needle in one_error(err)
    assert fake.calls == []  # rejected before any model is built


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "usage:" in err


def test_internal_error_is_exit_1_and_debug_shows_traceback(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze
) -> None:
    fake.exc = RuntimeError("boom")
    code, _, err = run(capsys, "analyze", "m")
    line = one_error(err)
    assert code == 1 and "internal error: RuntimeError: boom" in line and "--debug" in line
    code, _, err = run(capsys, "analyze", "m", "--debug")
    assert code == 1 and "Traceback" in err and "boom" in err


def test_input_error_with_debug_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--debug", "analyze", "m", "--input", "1xfoo")
    assert code == 2 and "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("modelmeter: error: malformed input")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"modelmeter {modelmeter.__version__}"


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelmeter", "analyze", "m", "--depth", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    one_error(done.stderr)


# ---- output files ---------------------------------------------------------------------------


def test_output_file_written(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, tmp_path: Path
) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run(capsys, "analyze", "m", "--format", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["total"]["flops"] == 330  # hand-built report
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left
    # the table in a file is plain text at a fixed width
    code, _, _ = run(capsys, "analyze", "m", "-o", str(tmp_path / "r.txt"))
    text = (tmp_path / "r.txt").read_text()
    assert code == 0 and "NOT COUNTED" in text and "\x1b[" not in text


def test_no_file_on_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, _, err = run(
        capsys, "analyze", "torchvision:no_such_model", "-f", "json", "-o", str(target)
    )
    assert code == 2 and "no_such_model" in one_error(err)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_kept_on_error(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, tmp_path: Path
) -> None:
    target = tmp_path / "report.json"
    target.write_text("previous")
    fake.exc = RuntimeError("mid-run")
    code, _, _ = run(capsys, "analyze", "m", "-f", "json", "-o", str(target))
    assert code == 1 and target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_refuses_to_write_over_the_model_file(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, tmp_path: Path
) -> None:
    model = tmp_path / "net.py"
    source = "import torch\n\ndef make():\n    return torch.nn.Linear(4, 2)\n"
    model.write_text(source)
    code, _, err = run(capsys, "analyze", f"{model}:make", "-i", "1x4", "-o", str(model))
    assert code == 2 and "refusing to write" in one_error(err)
    assert model.read_text() == source and fake.calls == []


def test_output_into_a_missing_directory(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "analyze", "m", "-o", str(tmp_path / "nope" / "r.txt"))
    assert code == 2 and "does not exist" in one_error(err) and fake.calls == []
    code, _, err = run(capsys, "analyze", "m", "-o", str(tmp_path))
    assert code == 2 and "is a directory" in one_error(err)


# ---- a real model, end to end ---------------------------------------------------------------


def test_resnet18_json_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "r18.json"
    code, out, err = run(
        capsys, "analyze", "torchvision:resnet18", "--format", "json", "-o", str(target)
    )
    assert code == 0, err
    text = target.read_text()
    doc = json.loads(text)
    assert doc["schema"] == "modelmeter.report/1" and doc["model"] == "torchvision:resnet18"
    assert doc["inputs"] == [{"shape": [1, 3, 224, 224], "dtype": "float32"}]
    # torchvision's published num_params for resnet18
    assert doc["total"]["params"] == 11_689_512
    assert Report.from_dict(doc).to_dict() == doc
    check_json(text)


# ---- ops ------------------------------------------------------------------------------------


def test_ops_formats(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ops", "--format", "md")
    assert code == 0 and out == render_ops("md")  # docs/ops.md: checked in test_render
    code, out, _ = run(capsys, "ops", "--format", "json")
    data = json.loads(out)
    assert code == 0 and any("convolution" in f["aten"] for f in data["formulas"])
    code, out, _ = run(capsys, "ops")
    assert code == 0 and "Counted operators" in out
    code, _, err = run(capsys, "ops", "--format", "csv")
    assert code == 2 and "invalid choice" in one_error(err)


def test_terminal_table_has_colour(
    capsys: pytest.CaptureFixture[str], fake: FakeAnalyze, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    code, out, err = run(capsys, "analyze", "m")
    assert code == 0 and "\x1b[" in out and "NOT COUNTED" in out
    assert err == ""  # the table itself says what was not counted
