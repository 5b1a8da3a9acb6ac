"""``modelmeter train --ep E``: expert parallelism of a mixture-of-experts model on the command
line; the plan's line, the all-to-alls and the expert gradients in the table and the JSON;
bad plans one line, exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cli_helpers import one_error, run

pytest.importorskip("transformers")

MOE = (
    "import torch\nimport torch.nn as nn\nimport transformers as tf\n\n\n"
    "def moe():\n"
    "    config = tf.AutoConfig.for_model('mixtral', hidden_size=16, intermediate_size=32,\n"
    "        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,\n"
    "        num_local_experts=4, num_experts_per_tok=2, vocab_size=10,\n"
    "        max_position_embeddings=64)\n"
    "    with torch.device('meta'):\n"
    "        return tf.MixtralForCausalLM(config)\n\n\n"
    "def dense():\n    return nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))\n"
)


@pytest.fixture
def models(write_model: Callable[[str, str], str]) -> None:
    write_model("moe.py", MOE)


@pytest.mark.usefixtures("models")
def test_expert_parallel_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("train", "moe.py:moe", "-i", "input_ids=1x4:int64", "--devices", "8", "--tp", "2", "--ep", "2",
            "--zero", "1", "--hardware", "h100-sxm")  # fmt: skip
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert ("8 devices = data 4 x tensor 2 x pipeline 1, expert 2 (each MoE layer's experts "
            "over 2 of the 4 data replicas), ZeRO-1") in out
    # the tiny Mixtral (tests/analysis/test_expert_parallel.py): 4,208 parameters x 4 B per
    # device; experts' states 3,072 x 4 (weights) + 3,072 x 4 (gradients) + 12,288 (ZeRO-1
    # optimizer over d/e = 2) = 36,864 B over 2 expert data-parallel replicas
    assert "weights 16.83 KB" in out and "experts' 36.86 KB of them over 2 expert" in out
    assert out.count("all-to-all") == 4 and "expert gradients" in out
    code, out, _ = run(capsys, *args, "-f", "json")
    d = json.loads(out)
    assert d["parallel"]["expert"] == 2
    assert d["memory"]["per_device"]["expert_data_parallel"] == 2
    rows = [c for c in d["communication"]["collectives"] if c["kind"] == "all-to-all"]
    # 4 tokens x 2 experts each x 16 x 4 B = 512 B, 2 MoE layers per step
    assert [(c["buffer_bytes"], c["per_step"], c["group"]) for c in rows] == [(512, 2, 2)] * 4


@pytest.mark.usefixtures("models")
@pytest.mark.parametrize(("argv", "message"), [
    (("moe.py:moe", "-i", "input_ids=1x4:int64", "--devices", "4", "--tp", "2", "--ep", "4"),
     "expert parallel degree 4 does not divide the 2 data-parallel replicas"),
    (("moe.py:moe", "-i", "input_ids=1x4:int64", "--devices", "8", "--ep", "8"),
     "does not divide the model's 4 experts per layer"),
    (("moe.py:dense", "-i", "2x8", "--devices", "2", "--ep", "2"),
     "needs a mixture-of-experts model"),
    (("moe.py:moe", "-i", "input_ids=1x4:int64", "--ep", "0"), "--ep"),
])  # fmt: skip
def test_bad_expert_plans_are_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                             argv: tuple[str, ...], message: str) -> None:  # fmt: skip
    code, _, err = run(capsys, "train", *argv)
    assert code == 2 and message in one_error(err)


@pytest.mark.usefixtures("models")
def test_ideal_prices_on_the_datasheet_and_runtime_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    # --ideal was accepted and ignored (the same step time with and without it); now the
    # step's forward is the forward's roofline on the datasheet figures, as analyze's --ideal
    # prices it
    from modelmeter.analysis.roofline import roofline
    from modelmeter.hardware import load_spec
    from modelmeter.usecases.train import train

    args = ("train", "moe.py:dense", "-i", "4x8", "--hardware", "h100-sxm", "-f", "json")
    _, plain, _ = run(capsys, *args)
    code, ideal, _ = run(capsys, *args, "--ideal")
    assert code == 0
    fwd = json.loads(ideal)["time"]["phases_s"]["forward"]
    assert fwd != json.loads(plain)["time"]["phases_s"]["forward"]
    import torch.nn as nn

    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    r = train(model, "4x8")
    chip = load_spec("h100-sxm")
    assert fwd == pytest.approx(roofline(r.report, chip, phase="forward", ideal=True)
                                .total.latency_s, rel=1e-12)  # fmt: skip
    for extra in (("--runtime", "graphs"), ("--tf32",)):
        code, _, err = run(capsys, *args, *extra)
        assert code == 2 and one_error(err) and "do not apply" in err
