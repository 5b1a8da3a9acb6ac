"""Multi-head latent attention (DeepSeek-V3) under tensor parallelism: the down-projections
``q_a_proj`` and ``kv_a_proj_with_mqa`` are replicated (a norm takes their whole output
features: ``analysis/latent_split.py``, ``frontends/torch/tp_region.py``), as vLLM's
``ReplicatedLinear`` and Megatron-Core's MLA keep them; ``q_b_proj`` / ``kv_b_proj`` are
column-parallel by heads and ``o_proj`` row-parallel.

The tiny DeepSeek-V3 (float32, 4 B): hidden 32, 4 heads, q_lora_rank = kv_lora_rank = 16,
nope 8 + rope 8 per head, v 8, 2 layers (the first dense, MLP 64; the second MoE: 4 experts
of 16, one shared expert of 16), vocab 64, untied, no biases. Per layer, attention:
q_a 32 x 16 = 512, q_a norm 16, q_b 16 x 4 x 16 = 1,024, kv_a 32 x (16 + 8) = 768, kv_a norm
16, kv_b 16 x 4 x (8 + 8) = 1,024, o 4 x 8 x 32 = 1,024 -> 4,384; its 2 norms 64. Dense MLP
3 x 32 x 64 = 6,144; MoE: experts 4 x 3 x 32 x 16 = 6,144, shared 3 x 32 x 16 = 1,536,
router 4 x 32 = 128. Embedding and head 2 x 64 x 32 = 4,096, final norm 32.
Whole: (4,384 + 64 + 6,144) + (4,384 + 64 + 6,144 + 1,536 + 128) + 4,096 + 32 = 26,976
parameters = 107,904 B.
Replicated: the norms 2 x (64 + 32) + 32 = 224, the router 128, and now q_a and kv_a
2 x (512 + 768) = 2,560 -> 2,912. Split: 26,976 - 2,912 = 24,064, / 2 = 12,032.
Per device at T = 2: 12,032 + 2,912 = 14,944 parameters = 59,776 B (it was
(26,976 - 352) / 2 + 352 = 13,664 parameters = 54,656 B with q_a and kv_a split).
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import run
from tiny_llama import config_source

pytest.importorskip("transformers")

from modelmeter.models.hf import preset_config  # noqa: E402

TINY = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
        "num_hidden_layers": 2, "first_k_dense_replace": 1, "num_attention_heads": 4,
        "num_key_value_heads": 4, "n_routed_experts": 4, "num_experts_per_tok": 2,
        "n_group": 1, "topk_group": 1, "kv_lora_rank": 16, "q_lora_rank": 16,
        "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8, "vocab_size": 64,
        "torch_dtype": "float32"}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return config_source(tmp_path_factory, "deepseek-tiny", {**preset_config("deepseek-v3"), **TINY})


def test_train_t2_replicates_the_down_projections(tiny: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", tiny, "-i", "input_ids=1x4:int64", "--devices", "2",
                         "--tp", "2", "-f", "json")  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["memory"]["categories"]["weights"] == 107_904  # 26,976 x 4 B
    assert d["memory"]["per_device"]["weights"] == 59_776  # the module docstring


def test_generate_t2_replicates_the_down_projections(tiny: str) -> None:
    from tiny_llama import built

    from modelmeter.usecases.generate import generate

    r = generate(built(tiny), prompt=4, new=2, batch=1, hardware="h100-sxm", tensor_parallel=2)
    w = r.tensor_parallel.weights
    # replicated 2,912 x 4 = 11,648 B; split 24,064 x 4 = 96,256 B whole, 48,128 per device
    assert (w.replicated, w.whole_split, w.split) == (11_648, 96_256, 48_128)
    assert r.memory.weight_bytes == 59_776  # the same as train's


def test_dense_split_is_unchanged(capsys: pytest.CaptureFixture[str], tmp_path_factory) -> None:
    # a tiny Llama (tests/tiny_llama.py): no linear's output features meet a norm before
    # the next linear, so nothing more is replicated: its weights per device at T = 2 stay
    # 214,272 B (derived in tests/analysis/test_serving_parallel.py)
    from tiny_llama import TINY_LLAMA, load_model

    from modelmeter.usecases.generate import generate

    r = generate(load_model(tmp_path_factory, "tiny", TINY_LLAMA), prompt=8, new=4, batch=2,
                 hardware="h100-sxm", tensor_parallel=2)  # fmt: skip
    assert r.memory.weight_bytes == 214_272


def test_deepseek_v3_t8_weights_per_device() -> None:
    # DeepSeek-V3 (tests/models/test_moe_models.py: 671,026,404,352 parameters, bf16 but the
    # 58 routers' 256 x 7,168 = 1,835,008 in fp32). Replicated: per layer q_a 7,168 x 1,536
    # = 11,010,048 and kv_a 7,168 x 576 = 4,128,768 -> 61 x 15,138,816 = 923,467,776 x 2 B
    # = 1,846,935,552; norms 61 x (1,536 + 512) + 123 x 7,168 = 1,006,592 x 2 B = 2,013,184;
    # routers 58 x 1,835,008 x 4 B = 425,721,856 -> 2,274,670,592 B. Split: 671,026,404,352
    # - 923,467,776 - 1,006,592 - 106,430,464 = 669,995,499,520 x 2 B = 1,339,990,999,040,
    # / 8 = 167,498,874,880. Per device: 169,773,545,472 B (it was 168,157,476,864 with the
    # down-projections split: 923,467,776 x 2 x 7/8 = 1,616,068,608 B less).
    from modelmeter.usecases.generate import generate

    r = generate("hf:deepseek-v3", prompt=8, new=2, batch=1, hardware="h100-sxm", tensor_parallel=8)
    w = r.tensor_parallel.weights
    assert (w.replicated, w.whole_split) == (2_274_670_592, 1_339_990_999_040)
    assert w.split == 167_498_874_880 and w.total == 169_773_545_472
    assert 169_773_545_472 - 168_157_476_864 == 1_616_068_608


def test_train_deepseek_v3_t8_bf16_weights_per_device(capsys: pytest.CaptureFixture[str]) -> None:
    # train casts every weight to bf16 (the routers too): replicated 923,467,776 (q_a, kv_a)
    # + 1,006,592 (norms) + 106,430,464 (routers) = 1,030,904,832; split 669,995,499,520 / 8
    # = 83,749,437,440 -> 84,780,342,272 parameters x 2 B = 169,560,684,544 B per device
    code, out, err = run(capsys, "train", "hf:deepseek-v3", "--tp", "8", "--devices", "8",
                         "--precision", "bf16", "-f", "json")  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["memory"]["categories"]["weights"] == 1_342_052_808_704  # 671,026,404,352 x 2
    assert d["memory"]["per_device"]["weights"] == 169_560_684_544


NETS = (
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
    "class Latent(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.down = nn.Linear(8, 4, bias=False)\n"
    "        self.norm = nn.RMSNorm(4)\n"
    "        self.up = nn.Linear(4, 8, bias=False)\n"
    "        self.out = nn.Linear(8, 8, bias=False)\n\n"
    "    def forward(self, x):\n"
    "        return self.out(F.relu(self.up(self.norm(self.down(x)))))\n\n\n"
    "class PerHead(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.qkv = nn.Linear(8, 8, bias=False)\n"
    "        self.out = nn.Linear(8, 8, bias=False)\n\n"
    "    def forward(self, x):\n"
    "        h = self.qkv(x).view(1, 4, 2, 4)\n"
    "        return self.out(F.layer_norm(h, (4,)).reshape(1, 4, 8))\n\n\n"
    "def latent():\n    return Latent()\n\n\n"
    "def per_head():\n    return PerHead()\n"
)


@pytest.mark.parametrize(("name", "per_device"), [
    # down 8 x 4 = 32 and the norm's 4 replicated (the norm takes down's whole output
    # features); up 32 and out 64 a column/row pair: 96 / 2 = 48 -> 84 parameters x 4 B
    # (with down split it was (32 + 32 + 64) / 2 + 4 = 68 x 4 = 272)
    ("latent", 336),
    # a norm over each head's 4 features of a column output (Qwen3's q/k norms) is no
    # gather: qkv 64 and out 64 stay a pair, 128 / 2 = 64 parameters x 4 B
    ("per_head", 256),
])  # fmt: skip
def test_the_rule_on_small_nets(name: str, per_device: int, tmp_path, monkeypatch,
                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "nets.py").write_text(NETS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", f"nets.py:{name}", "-i", "1x4x8", "--devices", "2",
                         "--tp", "2", "-f", "json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["memory"]["per_device"]["weights"] == per_device
