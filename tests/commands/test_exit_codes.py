"""Bad input exits 2 with one line, never 1 ("internal error"): each class of input that used
to reach arithmetic, allocation, file access or float formatting unbounded is refused where
it is parsed.

- shapes and counts whose size overflows (a dimension, an element count, ``--batch``);
- transformers configs with invalid values (one short line, however long the library's);
- paths the file system refuses (too long) for ``file.py:FACTORY`` and ``hf:``;
- ``utilization`` given a JSON document that is not a report, or a report with a bad entry;
- figures so small (or large) that the roofline's arithmetic gives inf/nan, and JSON that
  would say ``Infinity``;
- the user's code calling ``sys.exit``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import one_error, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmeter.cli import main
from modelmeter.errors import InputError, ModelRunError
from modelmeter.inputs import InputRequest
from modelmeter.report import Report

MAX_DIM = 2**31 - 1  # the largest dimension of an input (shapes.MAX_DIM)
MAX_ELEMENTS = 2**40  # the most elements of one input (shapes.MAX_ELEMENTS)

LINEAR = "import torch.nn as nn\n\n\ndef f():\n    return nn.Linear(4, 2)\n"


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "m.py").write_text(LINEAR, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return "m.py:f"


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: no NaN, Infinity or -Infinity."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


# ---- shapes and counts ------------------------------------------------------------------------


def test_the_bounds_are_the_documented_ones() -> None:
    from modelmeter import shapes

    assert (shapes.MAX_DIM, shapes.MAX_ELEMENTS) == (MAX_DIM, MAX_ELEMENTS)


def test_the_element_bound_is_exact() -> None:
    # 2**20 x 2**20 = 2**40 elements: the most an input may have; 2**40 + 2**20 is one row more
    assert InputRequest.from_cli(["1048576x1048576"]).args[0].shape == (2**20, 2**20)
    with pytest.raises(InputError, match="more than"):
        InputRequest.from_cli(["1048577x1048576"])
    assert InputRequest.from_cli([f"{MAX_DIM}"]).args[0].shape == (MAX_DIM,)
    with pytest.raises(InputError, match="out of range"):
        InputRequest.from_cli([f"{MAX_DIM + 1}"])


@settings(max_examples=40, deadline=None)
@given(dims=st.lists(st.integers(0, 10**30), min_size=1, max_size=6))
def test_every_shape_is_accepted_bounded_or_refused_with_one_input_error(dims: list[int]) -> None:
    elements = 1
    for d in dims:
        elements *= d
    ok = all(d <= MAX_DIM for d in dims) and elements <= MAX_ELEMENTS
    for make in (
        lambda: InputRequest.from_cli(["x".join(map(str, dims))]),
        lambda: InputRequest.from_api(tuple(dims)),
    ):
        if ok:
            assert make().args[0].shape == tuple(dims)
        else:
            with pytest.raises(InputError):
                make()


@pytest.mark.parametrize(
    ("inputs", "batch"),
    [
        (["1x1024x1024"], 2**20 + 1),  # (2**20 + 1) x 2**20 elements > 2**40
        (["1x4"], MAX_DIM + 1),
        ([[(1, 4), (1, 8)]], 10**20),  # a nested input: every item batched, every item bounded
    ],
)
def test_batch_cannot_overflow_an_input(inputs: list[Any], batch: int) -> None:
    with pytest.raises(InputError):
        InputRequest.from_api(inputs[0] if isinstance(inputs[0], list) else inputs, batch=batch)


@pytest.mark.parametrize(
    "args",
    [
        ["--input", "100000x100000x100000x100000"],  # 10**20 elements
        ["--input", "1x" + "9" * 26],  # a 26-digit dimension
        ["--input", "1x4", "--batch", "99999999999999999999"],
        ["--input", "1x4", "--batch", str(MAX_DIM + 1)],
        ["--input", "1x4", "--dim", "seq=99999999999999999999"],
        ["--input", "1x4", "--dim", "seq=²"],  # isdigit() says yes, int() says no
    ],
)
def test_overflowing_shapes_and_counts_exit_2(
    capsys: pytest.CaptureFixture[str], model: str, args: list[str]
) -> None:
    code, _, err = run(capsys, "analyze", model, *args)
    assert code == 2, err
    one_error(err)


def test_huge_repeat_counts_are_refused_before_timing(
    capsys: pytest.CaptureFixture[str], model: str
) -> None:
    code, _, err = run(capsys, "measure", model, "-i", "1x4", "--repeats", "9" * 20)
    assert code == 2 and "repeat count" in one_error(err)


# ---- transformers configs ---------------------------------------------------------------------

GPT2 = {"model_type": "gpt2", "n_layer": 1, "n_embd": 8, "n_head": 2, "vocab_size": 16}


@pytest.mark.parametrize(
    "change",
    [
        {"n_embd": -5},  # a negative size
        {"n_embd": "abc"},  # a non-numeric size
        {"vocab_size": 1.5},
        {"architectures": [5]},  # a non-string architecture
        {"architectures": "GPT2Model"},
        {"model_type": "nosuchmodel"},  # unknown: transformers lists every type it knows
        {"model_type": ["gpt2"]},
    ],
    ids=repr,
)
def test_invalid_transformers_configs_exit_2_in_one_short_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: dict[str, Any]
) -> None:
    pytest.importorskip("transformers")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GPT2, **change}), encoding="utf-8")
    code, _, err = run(capsys, "analyze", f"hf:{path}")
    assert code == 2, err
    assert len(one_error(err)) <= 300, err


# ---- paths the file system refuses ------------------------------------------------------------


@pytest.mark.parametrize("spec", ["a" * 300 + ".py:f", "hf:" + "a" * 300, "hf:" + "a" * 300 + ".json",
                                  "a" * 300 + ".json"])  # fmt: skip
def test_names_too_long_for_the_file_system_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.chdir(tmp_path)
    command = "utilization" if spec.endswith(".json") and not spec.startswith("hf:") else "analyze"
    extra = ["--hardware", "t4", "--latency", "1ms"] if command == "utilization" else []
    code, _, err = run(capsys, command, spec, *extra)
    assert code == 2, err
    assert len(one_error(err)) <= 520


def test_an_os_error_from_a_command_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelmeter.commands.ops as ops

    def denied(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(ops, "run", denied)  # the handler is read when the parser is built
    code, _, err = run(capsys, "ops")
    assert code == 2 and one_error(err) == "modelmeter: error: /some/file: Permission denied"


# ---- utilization given a document that is not a report ----------------------------------------


@pytest.fixture(scope="module")
def report_doc() -> dict[str, Any]:
    import torch.nn as nn

    from modelmeter.usecases.analyze import analyze

    return analyze(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), (1, 4)).to_dict()


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (keys and list indices), depth first."""
    out = [here]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*here, i))
    return out


BAD_VALUES = [None, "x", -1, 1.5, True, [], {}, [[]], 2**70, "NaN"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_corrupt_report_is_one_report_format_error(
    report_doc: dict[str, Any], data: st.DataObject
) -> None:
    doc = copy.deepcopy(report_doc)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    bad = data.draw(st.sampled_from(BAD_VALUES))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]  # a missing entry
    else:
        parent[path[-1]] = bad  # a mistyped or out-of-range entry
    from modelmeter.errors import ReportFormatError

    try:
        Report.from_dict(doc)
    except ReportFormatError as e:
        assert isinstance(e, (InputError, ValueError)) and "\n" not in str(e)


@pytest.mark.parametrize("doc", [[1, 2], "text", 5, None, {"schema": "modelmeter.report/1"}])
def test_documents_that_are_not_reports(doc: Any) -> None:
    from modelmeter.errors import ReportFormatError

    with pytest.raises(ReportFormatError):
        Report.from_dict(doc)


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '{"schema": "modelmeter.report/1", "modules": {}}',
        "[" * 100000 + "]" * 100000,  # nested deeper than the parser's recursion
        "CORRUPT",  # replaced below by a report with a corrupt entry
        "NAN",  # a report whose MACs are NaN
    ],
    ids=["list", "modules-not-list", "deep", "corrupt-entry", "nan"],
)
def test_utilization_of_a_bad_report_exits_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    report_doc: dict[str, Any],
    text: str,
) -> None:
    if text in ("CORRUPT", "NAN"):
        doc = copy.deepcopy(report_doc)
        doc["modules"][1]["ops"][0]["macs"] = "many" if text == "CORRUPT" else 0
        text = json.dumps(doc).replace('"macs": 0', '"macs": NaN')
    path = tmp_path / "r.json"
    path.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "utilization", str(path), "--hardware", "t4", "--latency", "1ms")
    assert code == 2, err
    one_error(err)


# ---- figures that underflow or overflow -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "-i", "1x4", "--peak", "1e-320", "--bandwidth", "1G"],  # subnormal
        ["analyze", "-i", "1x4", "--peak", "1T", "--bandwidth", "1e-320"],
        ["analyze", "-i", "1x4", "--peak", "1e-300", "--bandwidth", "1G"],  # 16 FLOP / 1e-300: inf
        ["analyze", "-i", "1x4", "--peak", "1e300T", "--bandwidth", "1G"],
        ["utilization", "-i", "1x4", "--hardware", "t4", "--latency", "1e-320s"],
        ["utilization", "-i", "1x4", "--hardware", "t4", "--latency", "1e-300s"],
    ],
)
def test_figures_out_of_range_exit_2(
    capsys: pytest.CaptureFixture[str], model: str, args: list[str]
) -> None:
    code, _, err = run(capsys, args[0], model, *args[1:])
    assert code == 2, err
    one_error(err)


@pytest.mark.parametrize(
    ("key", "value"),
    [("bandwidth", "1e-320"), ("bandwidth", '"1e-300"'), ("capacity", "1e-320")],
)
def test_hardware_files_with_absurd_figures_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str, value: str
) -> None:
    path = tmp_path / "hw.toml"
    path.write_text(
        f'name = "x"\nvendor = "v"\nkind = "npu"\n[memory]\n{key} = {value}\n'
        + ('bandwidth = "1G"\n' if key != "bandwidth" else "")
        + '[compute]\nint8 = "1T"\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "hardware", "show", str(path))
    assert code == 2, err
    assert "between" in one_error(err)


def test_the_smallest_accepted_figures_give_finite_strict_json(
    capsys: pytest.CaptureFixture[str], model: str
) -> None:
    # peak 1 OP/s and bandwidth 1 B/s (the least accepted): 16 FLOPs take 16 s, still finite
    code, out, err = run(
        capsys, "analyze", model, "-i", "1x4", "--peak", "1", "--bandwidth", "1", "-f", "json"
    )
    assert code == 0, err
    assert strict_json(out)["roofline"]["latency_s"] >= 16
    code, out, err = run(  # 1e-15s, the shortest latency accepted: finite utilization
        capsys, "utilization", model, "-i", "1x4", "--hardware", "t4", "--latency", "1e-15s",
        "-f", "json",
    )  # fmt: skip
    assert code == 0, err
    assert strict_json(out)["flop_utilization"] > 0


def test_json_never_says_infinity_or_nan() -> None:
    from modelmeter.render.jsonfmt import dumps

    # the policy: a non-finite number that still reaches a renderer is written as null
    text = dumps({"a": float("inf"), "b": [float("nan"), 1.5], "c": (float("-inf"),)})
    assert strict_json(text) == {"a": None, "b": [None, 1.5], "c": [None]}


def test_the_utilization_api_refuses_an_underflowing_latency() -> None:
    import torch.nn as nn

    import modelmeter
    from modelmeter.hardware import HardwareSpecError, load_spec

    report = modelmeter.analyze(nn.Linear(4, 2), (1, 4))
    with pytest.raises(HardwareSpecError):
        modelmeter.utilization(report, load_spec("t4"), 1e-320)


# ---- the user's code calling sys.exit ---------------------------------------------------------

EXITS = {
    "import": "import sys\nsys.exit(0)\n",
    "factory": "import sys\n\n\ndef f():\n    sys.exit(0)\n",
    "forward": (
        "import sys\nimport torch.nn as nn\n\n\nclass M(nn.Module):\n"
        "    def forward(self, x):\n        sys.exit(0)\n\n\ndef f():\n    return M()\n"
    ),
}


@pytest.mark.parametrize("where", list(EXITS))
def test_sys_exit_in_the_users_code_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    path = tmp_path / f"exit_{where}.py"
    path.write_text(EXITS[where], encoding="utf-8")
    code, _, err = run(capsys, "analyze", f"{path}:f", "-i", "1x4")
    assert code == 2, err
    assert "sys.exit(0)" in one_error(err)


@pytest.mark.parametrize("where", ["import", "factory"])
def test_sys_exit_while_loading_is_a_model_run_error_in_the_api(tmp_path: Path, where: str) -> None:
    from modelmeter.models.pyfile import load_file

    path = tmp_path / f"api_exit_{where}.py"
    path.write_text(EXITS[where], encoding="utf-8")
    with pytest.raises(ModelRunError, match=r"sys\.exit\(0\)"):
        load_file(str(path), "f")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["analyze", "--help"]])
def test_help_and_version_still_exit_0(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(args) == 0
