"""Active parameters per token and the expected distinct experts of a batch (uniform
routing), read off a Report; the rendered line and JSON field of a mixture-of-experts model,
gold files and the rows-add-up check."""

from __future__ import annotations

import gc
import json
import math

import pytest
from render_checks import (
    check_csv,
    check_json,
    check_markdown,
    check_rows_add_up,
    check_tree,
)

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

import modelmeter  # noqa: E402
from modelmeter.analysis.experts import (  # noqa: E402
    ROUTING,
    active_parameters,
    expected_distinct_experts,
    expert_layers,
    experts_summary,
    parameters_touched,
)
from modelmeter.render import render_report  # noqa: E402
from modelmeter.report import Report  # noqa: E402

TINY = {  # 2 layers, 4 experts top-2 of intermediate 32, hidden 16, 4 heads (2 kv) of 4
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 10,
    "max_position_embeddings": 64,
}


@pytest.fixture(scope="module")
def tiny_moe() -> Report:
    config = tf.AutoConfig.for_model("mixtral", **TINY)
    with torch.device("meta"):
        model = tf.MixtralForCausalLM(config).eval()
    # transformers' MoE forward leaves some tensors in reference cycles; the tracer pauses the
    # cyclic collector, so "peak live" is the same whatever the process did before (the
    # test below checks it)
    return modelmeter.analyze(model, kwargs={"input_ids": "1x4:int64"})


def test_peak_live_does_not_depend_on_the_collector(tiny_moe: Report) -> None:
    # the collector's schedule moved by a burst of allocations, then a second trace: the
    # same peak (it moved between 7,056 and 11,600 bytes before the tracer paused it)
    config = tf.AutoConfig.for_model("mixtral", **TINY)
    with torch.device("meta"):
        model = tf.MixtralForCausalLM(config).eval()
    burst = [[i] for i in range(100_000)]
    again = modelmeter.analyze(model, kwargs={"input_ids": "1x4:int64"})
    del burst
    assert again.peak_activation_bytes == tiny_moe.peak_activation_bytes
    assert gc.isenabled()  # the collector is running again after the trace


def test_expected_distinct_experts() -> None:
    # one token touches exactly its k experts: 8*(1 - (6/8)^1) = 2
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2.0)
    # 8 tokens, top-2 of 8: 8*(1 - 0.75^8) = 8*(1 - 0.100112915) = 7.19909668
    assert expected_distinct_experts(8, 2, 8) == pytest.approx(7.199096679, rel=1e-9)
    # no tokens: none; k = E: all of them
    assert expected_distinct_experts(8, 2, 0) == 0
    assert expected_distinct_experts(8, 8, 3) == 8
    # many tokens: every expert, never more
    assert expected_distinct_experts(256, 8, 10_000) == pytest.approx(256)
    # DeepSeek-V3 decode at batch 32: 256*(1 - (248/256)^32) = 256*(1 - 0.362055) = 163.31
    assert expected_distinct_experts(256, 8, 32) == pytest.approx(
        256 * (1 - (248 / 256) ** 32)
    )
    assert math.isclose(expected_distinct_experts(256, 8, 32), 163.31, abs_tol=0.01)
    for bad in ((0, 1, 1), (4, 5, 1), (4, 2, -1), (4, -1, 1)):
        with pytest.raises(ValueError):
            expected_distinct_experts(*bad)


def test_active_parameters_of_a_tiny_mixtral(tiny_moe: Report) -> None:
    # params: embed + lm_head 2*10*16 = 320; per layer q,o 2*16*16 = 512, k,v 2*16*8 = 256,
    # router 4*16 = 64, 4 experts of 3*16*32 = 1,536 -> 6,144, 2 norms 32 -> 7,008 x 2;
    # final norm 16 -> 14,352
    assert tiny_moe.total().params == 14_352
    # active: 2 of 4 experts per layer: 14,352 - 2*(6,144 - 3,072) = 8,208
    assert active_parameters(tiny_moe) == 8_208
    layers = expert_layers(tiny_moe)
    assert [(x.name, x.experts, x.top_k, x.params) for x in layers] == [
        (f"model.layers.{i}.mlp.experts", 4, 2, 6_144) for i in range(2)
    ]
    assert [x.active_params for x in layers] == [3_072, 3_072]
    # parameters a step reads: non-expert 14,352 - 2*6,144 = 2,064, plus per layer
    # 6,144 * distinct/4; one token: 2 experts -> 2,064 + 2*3,072 = 8,208 (the active count)
    assert parameters_touched(tiny_moe, 1) == pytest.approx(8_208)
    # 2 tokens: 4*(1 - (2/4)^2) = 3 experts expected -> 2,064 + 2*6,144*3/4 = 11,280
    assert parameters_touched(tiny_moe, 2) == pytest.approx(11_280)
    assert parameters_touched(tiny_moe, 1_000) == pytest.approx(14_352)


def test_dense_model_active_is_total() -> None:
    r = modelmeter.analyze(torch.nn.Linear(4, 3), "2x4")
    assert active_parameters(r) == r.total().params == 15
    assert expert_layers(r) == [] and experts_summary(r) is None
    assert "experts" not in json.loads(render_report(r, "json"))


def test_json_field_and_round_trip(tiny_moe: Report) -> None:
    d = json.loads(render_report(tiny_moe, "json"))
    assert d["schema"] == "modelmeter.report/1"
    assert d["experts"]["params"] == 14_352 and d["experts"]["active_params"] == 8_208
    assert d["experts"]["routing"] == ROUTING
    assert d["experts"]["layers"][0] == {
        "module": "model.layers.0.mlp.experts",
        "experts": 4,
        "top_k": 2,
        "params": 6_144,
        "active_params": 3_072,
    }
    # the report read back (the extra field ignored) gives the same figures
    back = Report.from_dict(d)
    assert active_parameters(back) == 8_208


def test_table_and_markdown_show_active_parameters(tiny_moe: Report) -> None:
    table = render_report(tiny_moe, "table", depth=None)
    line = next(x for x in table.splitlines() if x.startswith("active params"))
    assert "8.21K (8,208) per token of 14.35K: top-2 of 4 experts in 2 MoE layers" in line
    assert "every token to its top-k experts" in line
    md = render_report(tiny_moe, "md", depth=None)
    assert "| active params per token (every token to its top-k experts) | 8,208 |" in md


@pytest.mark.parametrize("depth", [2, 3])
def test_rows_add_up_moe(depth: int | None, tiny_moe: Report) -> None:
    check_rows_add_up(tiny_moe, depth)


def test_rows_add_up_moe_every_module(tiny_moe: Report) -> None:
    # every module (the table at full depth fits the width only by dropping columns)
    check_tree(tiny_moe)
    check_json(render_report(tiny_moe, "json"))
    check_csv(render_report(tiny_moe, "csv", depth=None), tiny_moe)
    check_markdown(render_report(tiny_moe, "md", depth=None), tiny_moe)


def test_gold_moe(tiny_moe: Report, gold) -> None:  # noqa: ANN001
    gold("tiny_moe.txt", render_report(tiny_moe, "table", depth=3))
    gold("tiny_moe.md", render_report(tiny_moe, "md", depth=3))
