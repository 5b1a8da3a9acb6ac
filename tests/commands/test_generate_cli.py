"""``modelmeter generate`` through the command line: output, JSON, bad input exit 2."""

from __future__ import annotations

import json

import pytest
from cli_helpers import one_error, run
from tiny_llama import TINY_LLAMA, config_source

pytest.importorskip("transformers")



@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    return config_source(tmp_path_factory, "tiny", TINY_LLAMA)


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
    assert d["schema"] == "modelmeter.generation/2" and d["timing"]["ttft_s"] > 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--prompt", "500", "--new", "20"], "512 positions"),
        (["--prompt", "8", "--new", "4", "--batch", "0"], "must be >= 1"),
        (["--prompt", "x", "--new", "4"], "whole number"),
        (["--prompt", "8", "--new", "4", "--tp", "3"], "does not divide the model's 4"),
        (["--prompt", "8", "--new", "4", "--tp", "0"], "--tp"),
        (["--prompt", "8", "--new", "4", "--tp", "16"], "at most 8"),
        (["--prompt", "8", "--new", "4", "--tp", "2", "--all-reduce", "tree"], "--all-reduce"),
        (["--prompt", "8", "--new", "4", "--tp", "2", "--hardware", "a10"], "intra-node link"),
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


def test_plot(capsys: pytest.CaptureFixture[str], config: str, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    png = tmp_path / "g.png"
    code, out, err = run(capsys, "generate", config, "--prompt", "8", "--new", "4",
                         "--hardware", "h100-sxm", "--plot", str(png))  # fmt: skip
    assert code == 0 and png.stat().st_size > 1000
    assert f"wrote {png}" in err


def test_plot_needs_a_chip(capsys: pytest.CaptureFixture[str], config: str, tmp_path) -> None:  # noqa: ANN001
    code, _, err = run(capsys, "generate", config, "--prompt", "8", "--new", "4",
                       "--plot", str(tmp_path / "g.png"))  # fmt: skip
    assert code == 2 and "--hardware" in one_error(err)


def test_sweeps_agree_with_the_generation(config: str) -> None:
    from modelmeter.usecases.generate_sweep import generation_sweeps

    s = generation_sweeps(config, prompt=8, new=4, batch=2, hardware="h100-sxm", most=3)
    assert [p.x for p in s.by_batch] == [1, 2, 4]
    at = next(p for p in s.by_batch if p.x == 2)
    assert at.per_token_s == s.result.timing.decode_mean_s
    assert at.tokens_per_s == s.result.timing.tokens_per_s
    # the context sweep covers 1 .. 511 (the model's 512 positions) at batch 2
    assert s.by_context[0].x == 1 and s.by_context[-1].x == 511
    assert all(p.tokens_per_s == pytest.approx(2 / p.per_token_s) for p in s.by_context)
    assert s.result.model.startswith("hf:tiny")


def test_tensor_parallel_table(capsys: pytest.CaptureFixture[str], config: str) -> None:
    code, out, _ = run(capsys, "generate", config, "--prompt", "8", "--new", "4", "-b", "2",
                       "--tp", "2", "--hardware", "h100-sxm")  # fmt: skip
    assert code == 0
    assert "tensor parallel 2: per device memory and times" in out.splitlines()[0]
    assert "memory per device (tensor parallel 2)" in out
    # 214,272 bytes per device (tests/analysis/test_serving_parallel.py), 1 of 2 kv heads
    assert "weights              214.27 KB" in out and "1 of 2 key/value heads" in out
    assert "communication" in out and "5 all-reduces" in out


def test_tensor_parallel_json(capsys: pytest.CaptureFixture[str], config: str) -> None:
    code, out, _ = run(capsys, "generate", config, "--prompt", "8", "--new", "4", "--tp", "2",
                       "-f", "json")  # fmt: skip
    d = json.loads(out)
    assert code == 0 and d["tensor_parallel"]["tensor"] == 2
    assert d["tensor_parallel"]["weight_bytes_per_device"] == d["memory"]["weight_bytes"]
    assert d["tensor_parallel"]["decode_step_communication"]["time_s"] is None  # no chip


def test_tensor_parallel_plot(capsys: pytest.CaptureFixture[str], config: str, tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib")
    png = tmp_path / "tp.png"
    code, out, err = run(capsys, "generate", config, "--prompt", "8", "--new", "4", "--tp", "2",
                         "--hardware", "h100-sxm", "--plot", str(png))  # fmt: skip
    assert code == 0 and png.stat().st_size > 1000 and "tensor parallel 2" in out
