"""Storage formats on transformers models built from configs on meta: the weights of every
linear layer at the weight format, embeddings, norms and lm_head at the model's dtype; the
analyze command's --weights/--kv. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from cli_helpers import one_error, run  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.report import Report  # noqa: E402


def _small_llama(tmp_path: Path) -> str:
    """A llama-shaped float16 model: hidden 256, 2 layers, 4 heads of 64 (2 KV heads), MLP 512,
    vocab 1000, lm_head untied."""
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
        "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 256,
        "tie_word_embeddings": False, "torch_dtype": "float16",
    }  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return f"hf:{tmp_path / 'config.json'}"


# per layer: q, o 256x256 (65,536 each), k, v 128x256 (32,768 each), gate, up 512x256
# (131,072 each), down 256x512 (131,072) -> 589,824 linear weights; norms 2*256 = 512.
# 2 layers: 1,179,648 linear parameters (14 tensors); embed and lm_head 256,000 each; final
# norm 256 -> 1,692,928 parameters.
LINEAR = 2 * (2 * 65_536 + 2 * 32_768 + 3 * 131_072)
OTHER = 2 * 256_000 + 2 * 512 + 256


def test_small_llama_at_int4(tmp_path: Path) -> None:
    model = _small_llama(tmp_path)
    plain = modelmeter.analyze(model)
    q = modelmeter.analyze(model, weights="int4", kv="fp8")
    assert q.total().params == plain.total().params == LINEAR + OTHER == 1_692_928
    # counts never change
    assert (q.total().macs, q.total().flops) == (plain.total().macs, plain.total().flops)
    # int4 g128: 1,179,648 / 2 = 589,824 bytes; every row (256 or 512 long) is 2 or 4 whole
    # groups: 1,179,648 / 128 = 9,216 groups * (2 + 0.5) = 23,040 -> 612,864
    assert q.storage is not None
    assert (q.storage.tensors, q.storage.params, q.storage.nbytes) == (14, LINEAR, 612_864)
    # the rest stays float16: 513,280 * 2 = 1,026,560 -> 1,639,424 bytes of weights
    assert q.size_by_dtype()["native"] == 612_864 + 2 * OTHER == 1_639_424
    assert plain.size_by_dtype()["native"] == 2 * (LINEAR + OTHER)
    # a forward reads each weight once: the linear weights' bytes drop from 2,359,296 to
    # 612,864; the embedding reads only its 128 gathered rows either way
    assert plain.total().weight_bytes - q.total().weight_bytes == 2 * LINEAR - 612_864
    # int8 per output channel: one fp16 scale per output feature; per layer q 256, k 128, v 128,
    # o 256, gate 512, up 512, down 256 = 2,048 rows (k and v are [128 out, 256 in]: the
    # rows run along in_features, not the 256-long output) -> 4,096 scales * 2 = 8,192
    q8 = modelmeter.analyze(model, weights="int8")
    assert q8.storage is not None and q8.storage.nbytes == LINEAR + 8_192


def test_llama_2_7b_weights_at_int4() -> None:
    r = modelmeter.analyze("hf:llama-2-7b", "1x1:int64", weights="int4")
    # linear weights per layer: q, k, v, o 4*4096*4096 = 67,108,864 and MLP 3*4096*11008 =
    # 135,266,304 -> 202,375,168; x 32 = 6,476,005,376 parameters in 224 tensors.
    # int4: 6,476,005,376 / 2 = 3,238,002,688 bytes; rows of 4096 or 11008 (= 86*128) split
    # into whole groups: 6,476,005,376 / 128 = 50,593,792 groups, each an fp16 scale
    # (101,187,584 bytes) and an int4 zero point (25,296,896) -> 3,364,487,168 bytes.
    assert r.storage is not None
    assert (r.storage.tensors, r.storage.params) == (224, 6_476_005_376)
    assert r.storage.nbytes == 3_364_487_168
    # embed_tokens and lm_head (2*32000*4096 = 262,144,000) and the norms (65*4096 = 266,240)
    # stay float16: 262,410,240 * 2 = 524,820,480 -> 3,889,307,648 bytes (3.89 GB, vs
    # 13,476,831,232 at fp16)
    assert r.size_by_dtype()["native"] == 3_889_307_648


def test_analyze_cli_weights_and_kv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _small_llama(tmp_path)
    code, out, _ = run(capsys, "analyze", model, "--weights", "int4", "--kv", "fp8", "-f", "json")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "modelmeter.report/1"
    assert d["storage"]["weights"]["name"] == "int4:g128"
    assert d["storage"]["kv"]["name"] == "fp8"
    assert d["storage"]["quantized"]["bytes"] == 612_864
    assert d["size_by_dtype"]["native"] == 1_639_424
    assert Report.from_dict(d).storage is not None
    code, out, _ = run(capsys, "analyze", model, "--weights", "int8", "--depth", "0")
    assert code == 0
    assert "weights stored as int8 (per output channel, fp16 scale per row)" in " ".join(
        out.split())  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--weights", "int5", "argument --weights: unknown weight format 'int5'; use one of"),
        ("--weights", "int4:g0", "unknown weight format 'int4:g0'"),
        ("--kv", "fp32", "argument --kv: unknown KV-cache format 'fp32'; use one of fp16,"),
    ],
)
def test_bad_format_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    # refused by the parser, before the model is looked at (it does not exist)
    code, out, err = run(capsys, "analyze", "hf:no-such-model", option, value)
    assert code == 2 and out == ""
    assert expected in one_error(err)


def test_several_models_say_the_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b").mkdir()
    a, b = _small_llama(tmp_path), _small_llama(tmp_path / "b")
    code, out, _ = run(capsys, "analyze", a, b, "--weights", "int4:g64", "--kv", "int4")
    assert code == 0
    assert "Bytes at the storage formats weights int4:g64, KV cache int4" in out
    code, out, _ = run(capsys, "analyze", a, b, "--weights", "fp8", "-f", "json")
    d = json.loads(out)
    assert d["storage"]["weights"]["name"] == "fp8" and d["storage"]["kv"] is None
    # the formats change bytes, never the parameter count (1,692,928 each, derived above)
    assert [r["params"] for r in d["rows"]] == [1_692_928, 1_692_928]
    code, out, _ = run(capsys, "analyze", a, b, "-f", "json")
    assert "storage" not in json.loads(out)
