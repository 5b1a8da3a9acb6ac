"""``modelmeter train``: the command delegates to the use case; bad input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import one_error, run


def test_train_json_and_table(capsys: pytest.CaptureFixture[str], mlp: str) -> None:
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--optimizer", "adam",
                       "--precision", "bf16-mixed", "--accumulate", "2", "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert (d["optimizer"], d["precision"], d["accumulate"]) == ("adam", "bf16-mixed", 2)
    assert d["memory"]["bytes_per_trainable_param"] == 16.0
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--hardware", "h100-sxm")
    assert code == 0 and "capacity (h100-sxm)" in out and "MFU" in out


def test_zero_stages_over_devices(capsys: pytest.CaptureFixture[str], mlp: str) -> None:
    # fp32 AdamW, 12,448 parameters: weights 49,792 B, gradients 49,792, m + v 99,584;
    # ZeRO-2 over 4 devices: 49,792 + 49,792/4 + 99,584/4 = 49,792 + 12,448 + 24,896 = 87,136
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "4", "--zero", "2",
                       "-f", "json")  # fmt: skip
    assert code == 0
    per_device = json.loads(out)["memory"]["per_device"]
    assert per_device == {"devices": 4, "zero_stage": 2, "weights": 49_792, "buffers": 0,
                          "gradients": 12_448, "optimizer": 24_896, "total": 87_136,
                          "shard_group": None}  # fmt: skip
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "4", "--zero", "2",
                       "--hardware", "h100-sxm")  # fmt: skip
    # the table leads with one device of the plan (its states: 49.79 + 12.45 + 24.90 KB),
    # against the chip; then the trace, one device holding everything (model states 49,792 x
    # 2 + 99,584 = 199,168 B), with no second capacity row
    lines = out.splitlines()
    first = lines.index("one device of the plan: 4 devices, ZeRO-2")
    assert lines[first + 1].split() == ["model", "states", "per", "device", "87.14", "KB",
                                        "weights", "49.79", "KB,", "gradients", "12.45", "KB,",
                                        "optimizer", "24.90", "KB"]  # fmt: skip
    trace = lines.index("one device holding everything (the trace):")
    assert first < trace and lines[trace + 1].startswith("memory")
    assert any(x.startswith("model states   ") and "199.17 KB" in x for x in lines[trace:])
    capacity = [i for i, x in enumerate(lines) if x.startswith("capacity (h100-sxm)")]
    assert len(capacity) == 1 and first < capacity[0] < trace


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "lamb"], "unknown optimizer 'lamb'"),
        (["--precision", "fp8-mixed"], "unknown precision 'fp8-mixed'"),
        (["--variant", "vectorised"], "unknown optimizer variant"),
        (["--accumulate", "0"], "must be >= 1"),
        (["--seq", "16"], "give --seq or --input, not both"),
        (["--hardware", "no-such-chip"], "no-such-chip"),
        (["--zero", "4"], "invalid ZeRO stage '4': must be <= 3"),
        (["--devices", "0"], "must be >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], mlp: str,
                                      args: list[str], message: str) -> None:  # fmt: skip
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", *args)
    assert code == 2
    assert message in one_error(err)


def test_no_trainable_parameters_and_onnx_are_refused(capsys: pytest.CaptureFixture[str],
                                                      mlp: str) -> None:  # fmt: skip
    code, _, err = run(capsys, "train", "m.py:frozen", "-i", "8x64")
    assert code == 2 and "no trainable parameters" in one_error(err)
    code, _, err = run(capsys, "train", "model.onnx")
    assert code == 2 and "PyTorch model" in one_error(err)


def test_max_batch(capsys: pytest.CaptureFixture[str], mlp: str) -> None:
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--hardware", "t4", "--max-batch",
                       "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert d["max_batch"] == d["samples"] and d["max_batch"] > 8
    assert d["memory"]["peak"]["bytes"] <= d["time"]["capacity_bytes"]
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", "--max-batch")
    assert code == 2 and "needs a chip" in one_error(err)


STACK = (
    "import torch.nn as nn\n\n\nclass S(nn.Module):\n"
    "    def __init__(self):\n        super().__init__()\n"
    "        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(64, 64), nn.ReLU())\n"
    "                                     for _ in range(3)])\n\n"
    "    def forward(self, x):\n        for b in self.blocks:\n            x = b(x)\n"
    "        return x\n"
)


def test_checkpoint_adds_a_recompute_phase(capsys: pytest.CaptureFixture[str],
                                           mlp: str) -> None:  # fmt: skip
    Path("s.py").write_text(STACK, encoding="utf-8")
    code, out, _ = run(capsys, "train", "s.py:S", "-i", "8x64", "--checkpoint", "-f", "json")
    assert code == 0
    d = json.loads(out)
    # 3 blocks Linear -> ReLU: the backward needs each ReLU's output, so each Linear runs
    # again (8*64*64 = 32,768 MACs): 98,304 (a Linear alone would need only its input, which
    # the checkpoint keeps: nothing to recompute)
    assert d["checkpointing"] is True and d["phases"]["recompute"]["macs"] == 98_304
    code, out, _ = run(capsys, "train", "s.py:S", "-i", "8x64", "--checkpoint")
    assert "recompute x1" in out and "activation checkpointing" in out
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", "--checkpoint")
    assert code == 2 and "nn.ModuleList" in one_error(err)


def test_communication_over_devices(capsys: pytest.CaptureFixture[str], mlp: str) -> None:
    # fp32, 12,448 parameters: gradients 49,792 B; DP over 16 (2 nodes of 8, NVLink 4 + NDR):
    # all-reduce sends 2 x 15/16 x 49,792 = 93,360 B per device, 30 steps x 5 us + 93,360 / 50e9
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16",
                       "--hardware", "h100-sxm", "-f", "json", "--collective", "ring")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    c = d["communication"]
    assert (c["nodes"], c["link"]["name"], c["overlap"]) == (2, "nvlink4+ib-ndr", "none")
    assert c["collectives"][0]["sent_per_device"] == 93_360
    assert c["time_s"] == pytest.approx(30 * 5e-6 + 93_360 / 50e9)
    assert (c["collective_algorithm"], c["collectives"][0]["algorithm"]) == ("ring", "ring")
    # the default (auto) takes the hierarchical all-reduce, faster here: reduce-scatter in
    # the node (7 x 2 us + 7/8 x 49,792 / 450e9), all-reduce of the 6,224-byte shard over 2
    # nodes (2 x 5 us + 6,224 / 50e9), all-gather in the node: the same 93,360 bytes sent
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16",
                       "--hardware", "h100-sxm", "-f", "json")  # fmt: skip
    c = json.loads(out)["communication"]
    x = c["collectives"][0]
    assert (x["algorithm"], x["sent_per_device"]) == ("hierarchical", 93_360)
    assert c["time_s"] == pytest.approx(2 * (14e-6 + 43_568 / 450e9) + 10e-6 + 6_224 / 50e9)
    t = d["time"]
    assert t["step_s"] == pytest.approx(t["compute_s"] + t["communication_s"])
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16", "--zero", "3",
                       "--hardware", "h100-sxm", "--gpus-per-node", "16", "--overlap", "full")  # fmt: skip
    assert code == 0
    assert "16 data-parallel replicas (1 node of up to 16), ZeRO-3, ring collectives over nvlink4" in out
    assert "reduce-scatter" in out and "full overlap" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "16", "--hardware", "a100-pcie-80gb"], "need an inter-node link"),
        (["--devices", "2", "--hardware", "t4"], "names no intra-node link"),
        (["--devices", "2", "--intra", "nvlink9"], "nvlink9"),
        (["--devices", "2", "--overlap", "half"], "half"),
        (["--devices", "2", "--gpus-per-node", "0"], "must be >= 1"),
        (["--devices", "6", "--tp", "4"], "6 devices do not split into tensor 4"),
        (["--devices", "3", "--pp", "3"], "needs repeated layers"),
        (["--devices", "2", "--pp", "2", "--micro-batches", "4", "--accumulate", "2"], "differ"),
        (["--devices", "8", "--shard-group", "4"], "needs a ZeRO stage"),
        (["--devices", "12", "--zero", "3", "--shard-group", "8"],
         "shard group 8 does not divide the 12 data-parallel devices"),
        (["--devices", "8", "--zero", "3", "--shard-group", "half"], "--shard-group"),
        (["--devices", "8", "--collective", "tree"], "tree"),
        (["--devices", "8", "--nics-per-node", "0"], "must be >= 1"),
    ],
)
def test_bad_plans_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], mlp: str,
                                       args: list[str], message: str) -> None:  # fmt: skip
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", *args)
    assert code == 2
    assert message in one_error(err)


def test_tensor_and_pipeline_parallel(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    (tmp_path / "t.py").write_text(
        "import torch.nn as nn\n\n\nclass T(nn.Module):\n    num_heads = 4\n\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(4))\n\n"
        "    def forward(self, x):\n        for layer in self.layers:\n            x = layer(x)\n"
        "        return x\n", encoding="utf-8")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "train", "t.py:T", "-i", "2x8", "--devices", "8", "--tp", "2",
                       "--pp", "2", "--micro-batches", "4", "--hardware", "h100-sxm")  # fmt: skip
    assert code == 0
    assert "8 devices = data 2 x tensor 2 x pipeline 2" in out
    assert "pipeline bubble" in out and "send/recv" in out
    code, _, err = run(capsys, "train", "t.py:T", "-i", "2x8", "--devices", "3", "--tp", "3")
    assert code == 2 and "does not divide the model's 4 attention heads" in one_error(err)
    code, _, err = run(capsys, "train", "t.py:T", "-i", "2x8", "--devices", "8", "--pp", "8")
    assert code == 2 and "8 pipeline stages for 4 layers" in one_error(err)


def test_hybrid_shard_and_the_device_peak(capsys: pytest.CaptureFixture[str], mlp: str) -> None:
    # fp32 AdamW, 12,448 parameters: weights 49,792 B; 16 devices in groups of one node (8):
    # ZeRO-3 holds 49,792 / 8 = 6,224 B of weights per device; within the group the weights'
    # all-gathers and the gradients' reduce-scatter, across the 2 groups the 6,224-byte shard
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16", "--zero", "3",
                       "--shard-group", "node", "--hardware", "h100-sxm", "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert (d["memory"]["per_device"]["weights"], d["memory"]["per_device"]["shard_group"]) == (
        6224, 8)  # fmt: skip
    c = d["communication"]
    assert [(x["what"], x["group"], x["buffer_bytes"]) for x in c["collectives"]][-1] == (
        "gradient shard", 2, 6224)  # fmt: skip
    peak = d["memory"]["per_device_peak"]
    assert peak["gathered_weights"] > 0 and peak["fits"] is True
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16", "--zero", "3",
                       "--shard-group", "8", "--hardware", "h100-sxm")  # fmt: skip
    assert "ZeRO-3 within groups of 8" in out and "replicated over 2 groups" in out
    assert "peak per device" in out and "gathered weights" in out


GPT_FILE = (
    "import sys\nsys.path.insert(0, {tests!r})\nfrom gpt_layers import GPT\n\n\n"
    "def gpt():\n    return GPT(32, 4, 4)\n"
)


def test_per_device_activations_and_peak(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    tests = str(Path(__file__).resolve().parents[1])
    (tmp_path / "g.py").write_text(GPT_FILE.format(tests=tests), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    base = ["train", "g.py:gpt", "-i", "2x16:int64", "--precision", "bf16", "--optimizer", "sgd"]
    code, out, _ = run(capsys, *base, "--devices", "8", "--tp", "2", "--sequence-parallel",
                       "--pp", "2", "--micro-batches", "4", "--virtual-stages", "2",
                       "--hardware", "h100-sxm")  # fmt: skip
    assert code == 0
    for row in ("model states per device", "activations per device", "peak per device"):
        assert row in out
    assert "interleaved 1F1B" in out and "reduce-scatter" in out and "(p-1)/(v·m+p-1)" in out
    assert "sequence parallel the rest" in out and "fits," in out.split("peak per device")[1]
    code, out, _ = run(capsys, *base, "--devices", "4", "--tp", "2", "--pp", "2",
                       "--micro-batches", "4", "--schedule", "gpipe", "-f", "json")  # fmt: skip
    d = json.loads(out)
    a = d["memory"]["per_device_activations"]
    # GPipe: every stage holds all 4 micro-batches; the whole model's activations split
    assert (a["schedule"], a["in_flight"], d["parallel"]["schedule"]) == ("gpipe", 4.0, "gpipe")
    assert d["memory"]["per_device_peak"]["bytes"] > a["held_bytes"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--devices", "2", "--sequence-parallel"], "needs a tensor parallel degree > 1"),
    (["--devices", "2", "--virtual-stages", "2"], "need a pipeline of 2 or more stages"),
    (["--devices", "2", "--pp", "2", "--micro-batches", "4", "--virtual-stages", "3"],
     "4 layers do not split into 2 stages x 3 virtual stages"),
    (["--devices", "2", "--pp", "2", "--micro-batches", "4", "--virtual-stages", "2",
      "--schedule", "gpipe"], "not GPipe"),
    (["--devices", "2", "--pp", "2", "--micro-batches", "3", "--virtual-stages", "2"],
     "multiple of the 2 pipeline stages"),
    (["--virtual-stages", "0"], "--virtual-stages"),
])  # fmt: skip
def test_bad_parallel_schedules(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch, extra: list[str],
                                message: str) -> None:  # fmt: skip
    tests = str(Path(__file__).resolve().parents[1])
    (tmp_path / "g.py").write_text(GPT_FILE.format(tests=tests), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", "g.py:gpt", "-i", "2x16:int64", *extra)
    assert code == 2
    assert message in one_error(err)


def test_tensor_degree_not_dividing_the_key_value_heads_is_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # fmt: skip
    # Llama-style grouped-query attention, 4 query heads sharing 2 key/value heads: --tp 4
    # divides the query heads (4 / 4 = 1) but not the key/value heads (2 / 4): exit 2
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
           "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
           "num_hidden_layers": 1, "vocab_size": 64, "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip
    path = tmp_path / "gqa.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    code, _, err = run(capsys, "train", f"hf:{path}", "--seq", "8", "--devices", "4",
                       "--tp", "4")  # fmt: skip
    assert code == 2
    assert "tensor parallel degree 4 does not divide the model's 2 key/value heads" in one_error(
        err)  # fmt: skip


def test_a_node_s_shard_group_shrinks_to_fewer_devices(capsys: pytest.CaptureFixture[str],
                                                       mlp: str) -> None:  # fmt: skip
    # 4 devices, nodes of 8: the node's group (8 replicas) shrinks to the 4 replicas, one
    # group: ZeRO-3 over all 4, as without --shard-group: fp32 AdamW, 12,448 parameters:
    # weights 49,792 / 4 = 12,448 B, gradients the same, m + v 99,584 / 4 = 24,896 B
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "4", "--zero", "3",
                       "--shard-group", "node", "-f", "json")  # fmt: skip
    assert code == 0
    d = json.loads(out)
    assert d["memory"]["per_device"] == {"devices": 4, "zero_stage": 3, "weights": 12_448,
                                         "buffers": 0, "gradients": 12_448, "optimizer": 24_896,
                                         "total": 49_792, "shard_group": None}  # fmt: skip
    assert any("shard group 'node' (the 8 replicas a node of 8 GPUs holds)" in n and "shrunk to the 4 data-parallel "
               "replicas of 4 devices" in n for n in d["notes"])  # fmt: skip
    # a node of 8 over 2 x 8 = 16 devices stays a group of 8 (no note)
    code, out, _ = run(capsys, "train", mlp, "-i", "8x64", "--devices", "16", "--zero", "3",
                       "--shard-group", "node", "-f", "json")  # fmt: skip
    d = json.loads(out)
    assert d["memory"]["per_device"]["shard_group"] == 8
    assert not any("shrunk" in n for n in d["notes"])


def test_a_shape_the_model_cannot_take_names_the_module(
    capsys: pytest.CaptureFixture[str], mlp: str
) -> None:
    # the MLP's first Linear takes 64 features; 8 x 5 fails there: one line naming it, exit 2
    code, _, err = run(capsys, "train", mlp, "-i", "8x5")
    assert code == 2 and "module '0' (Linear) failed on inputs [8x5]" in one_error(err)


def test_a_named_models_integer_inputs_keep_their_dtype() -> None:
    # GPT-2's attention_mask given as a bare shape is int64 (the model's), as in analyze
    from modelmeter.inputs import InputRequest, ShapeInput
    from modelmeter.usecases.train import _prepare

    request = InputRequest.from_cli(["input_ids=1x16", "attention_mask=1x16"])
    _, request, _ = _prepare("hf:gpt2", request, None)
    assert request.kwargs["attention_mask"] == ShapeInput((1, 16), "int64")
