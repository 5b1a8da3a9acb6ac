"""Shared test fixtures; ``pytest --update-gold`` rewrites gold files instead of comparing."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import pytest

from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, ParamStats, Report

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
REPO = TESTS.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-gold",
        action="store_true",
        default=False,
        help="rewrite gold files (tests/golden/*, docs/ops.md) instead of comparing with them",
    )


@pytest.fixture
def gold(request: pytest.FixtureRequest) -> Callable[[str | Path, str], None]:
    """``gold(path, text)``: compare ``text`` with a gold file (relative paths are under
    tests/golden); with ``--update-gold`` write it instead."""
    update = bool(request.config.getoption("--update-gold"))

    def check(path: str | Path, text: str) -> None:
        p = Path(path)
        p = p if p.is_absolute() else GOLDEN / p
        if update:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
            return
        if not p.exists():
            pytest.fail(f"missing gold file {p.name}: run pytest --update-gold")
        expected = p.read_text(encoding="utf-8")
        if text != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    "gold",
                    "now",
                    n=1,
                )
            )
            pytest.fail(f"{p.name} differs from its gold file (pytest --update-gold):\n{diff}")

    return check


def make_report() -> Report:
    """A hand-built report (no tracing), numbers chosen so totals are easy to check by hand:

    Net (own: nothing)
      body  Sequential  own op aten.add: flops 100, read 800, written 400
        body.0 Linear   110 params; aten.addmm macs 100 flops 200 read 480 written 40 weight 440
        body.1 ReLU     aten.relu flops 10 read 40 written 40
      head  Linear      11 params (frozen); aten.addmm macs 10 flops 20 read 84 written 4
                        weight 44; one unsupported op aten.frobnicate called twice
    """
    lin = ModuleNode(
        "body.0",
        "Linear",
        depth=2,
        calls=1,
        own=ParamStats(params=110, trainable=110, param_bytes=440),
        output_shapes=[[4, 10]],
        ops=[OpRecord("aten.addmm", Cost(100, 200, 480, 40, 440), shapes=((10,), (4, 10)))],
    )
    relu = ModuleNode(
        "body.1",
        "ReLU",
        depth=2,
        calls=1,
        output_shapes=[[4, 10]],
        ops=[OpRecord("aten.relu", Cost(0, 10, 40, 40, 0), shapes=((4, 10),))],
    )
    body = ModuleNode(
        "body",
        "Sequential",
        depth=1,
        calls=1,
        output_shapes=[[4, 10]],
        ops=[OpRecord("aten.add", Cost(0, 100, 800, 400, 0), shapes=((4, 10), (4, 10)))],
        children=[lin, relu],
    )
    head = ModuleNode(
        "head",
        "Linear",
        depth=1,
        calls=1,
        own=ParamStats(params=11, trainable=0, buffers=0, param_bytes=44),
        output_shapes=[[4, 1]],
        ops=[OpRecord("aten.addmm", Cost(10, 20, 84, 4, 44), shapes=((1,), (4, 10)))],
        unsupported={"aten.frobnicate": 2},
    )
    root = ModuleNode(
        "",
        "Net",
        depth=0,
        calls=1,
        own=ParamStats(buffers=3, buffer_bytes=12),
        output_shapes=[[4, 1]],
        children=[body, head],
    )
    return Report(
        model="handmade",
        frontend="torch",
        convention="exact",
        mode="meta",
        inputs=[InputSpec((4, 10), "float32")],
        root=root,
        activation_bytes=484,
        peak_activation_bytes=160,
        notes=["a note"],
    )


@pytest.fixture
def handmade() -> Report:
    return make_report()


@pytest.fixture
def handmade_factory() -> Callable[[], Report]:
    """``make_report`` itself, for tests that need fresh hand-built reports."""
    return make_report
