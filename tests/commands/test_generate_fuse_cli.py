"""``modelmeter generate --fuse [RULES]`` through the command line."""

from __future__ import annotations

import json

import pytest
from cli_helpers import one_error, run
from tiny_llama import TINY_LLAMA, config_source

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    return config_source(tmp_path_factory, "tiny", TINY_LLAMA)


def test_table_block(capsys: pytest.CaptureFixture[str], config: str) -> None:
    code, out, _ = run(capsys, "generate", config, "--prompt", "8", "--new", "4",
                       "--hardware", "h100-sxm", "--fuse")  # fmt: skip
    assert code == 0
    assert "fusion what-if (rules: elementwise, conv-bn-act, attention, cast, reduction, " \
        "rotary)" in out
    # tests/usecases/test_generate_fusion.py derives 89 -> 30 kernels per decode step
    assert "decode step 89 -> 30" in out


def test_json_rules(capsys: pytest.CaptureFixture[str], config: str) -> None:
    code, out, _ = run(capsys, "generate", config, "--prompt", "8", "--new", "4",
                       "--hardware", "h100-sxm", "--fuse", "elementwise", "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert d["fusion"]["rules"] == ["elementwise"]
    assert d["fusion"]["timing"]["ttft_s"] <= d["timing"]["ttft_s"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--fuse", "bogus"], "unknown fusion rule 'bogus'"),
        (["--fuse", "--plot", "x.png", "--hardware", "h100-sxm"], "--fuse draws no charts"),
    ],
)
def test_bad_input(capsys: pytest.CaptureFixture[str], config: str, argv: list[str],
                   words: str) -> None:  # fmt: skip
    code, _, err = run(capsys, "generate", config, "--prompt", "8", "--new", "4", *argv)
    assert code == 2
    assert words in one_error(err)
