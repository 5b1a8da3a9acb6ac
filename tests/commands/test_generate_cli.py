"""``modelmeter generate`` through the command line: output, JSON, bad input exit 2."""

from __future__ import annotations

import json

import pytest
from cli_helpers import one_error, run

pytest.importorskip("transformers")

TINY = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 256, "max_position_embeddings": 512,
}  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return f"hf:{path}"


def test_table(capsys: pytest.CaptureFixture[str], config: str) -> None:
    code, out, _ = run(capsys, "generate", config, "--prompt", "8", "--new", "4", "-b", "2")
    assert code == 0
    assert "decode step, first (context 8)" in out and "KV cache" in out


def test_json_file(capsys: pytest.CaptureFixture[str], config: str, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "g.json"
    code, _, err = run(capsys, "generate", config, "--prompt", "8", "--new", "4",
                       "--hardware", "h100-sxm", "-f", "json", "-o", str(out))  # fmt: skip
    assert code == 0
    d = json.loads(out.read_text())
    assert d["schema"] == "modelmeter.generation/1" and d["timing"]["ttft_s"] > 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--prompt", "500", "--new", "20"], "512 positions"),
        (["--prompt", "8", "--new", "4", "--batch", "0"], "at least 1"),
        (["--prompt", "x", "--new", "4"], "whole number"),
    ],
)
def test_bad_input(capsys: pytest.CaptureFixture[str], config: str, argv, words) -> None:  # noqa: ANN001
    code, _, err = run(capsys, "generate", config, *argv)
    assert code == 2
    assert words in one_error(err)


def test_not_a_decoder(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "generate", "hf:bert-base-uncased", "--prompt", "4", "--new", "2")
    assert code == 2
    assert "decoder" in one_error(err)
