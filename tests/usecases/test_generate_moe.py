"""Mixture of experts in the prefill: the B x P routed tokens read the expected distinct
experts' weights. Expectations derived by hand below.

Mixtral-8x7B, 2 layers (bf16): E = 8 experts, k = 2 per token; one expert layer's stacked
weights are 8 x 3 x 4096 x 14336 x 2 bytes = 2,818,572,288 (gate+up 8 x 4096 x 28672 x 2 =
1,879,048,192 and down 8 x 14336 x 4096 x 2 = 939,524,096, two grouped matmuls).
T routed tokens touch E (1 - ((E-k)/E)^T) experts on average: a share 1 - (3/4)^T of each
stack is read.
- batch 1, prompt 2: T = 2, share 1 - 9/16 = 7/16; not read: 9/16 of 2 x 2,818,572,288 =
  3,170,893,824 bytes.
- batch 2, prompt 4: T = 8, (3/4)^8 = 6561/65536 not read: 2 x 2,818,572,288 x 6561/65536 =
  86,016 x 6,561 = 564,350,976 bytes.
- T = 128: (3/4)^128 = 1.0e-16 of 1,879,048,192 bytes is 1.9e-7 of a byte: every expert is
  read (rounded to whole bytes).
"""

from __future__ import annotations

import json

import pytest

from modelmeter.analysis.experts import ExpertLayer
from modelmeter.analysis.generation_moe import distinct_share
from modelmeter.models.hf import preset_config

pytest.importorskip("transformers")

from modelmeter.usecases.generate import generate  # noqa: E402

LAYER = 8 * 3 * 4096 * 14336 * 2  # 2,818,572,288


@pytest.fixture(scope="module")
def mixtral(tmp_path_factory: pytest.TempPathFactory) -> object:
    from modelmeter.models import load

    path = tmp_path_factory.mktemp("cfg") / "mixtral-2l.json"
    path.write_text(json.dumps({**preset_config("mixtral-8x7b"), "num_hidden_layers": 2}))
    return load(f"hf:{path}").model


def test_prefill_reads_expected_experts(mixtral: object) -> None:
    g = generate(mixtral, prompt=2, new=1, batch=1, hardware="h100-sxm")
    traced = g.prefill.total().cost  # every expert's weights, as traced
    assert LAYER == 2_818_572_288
    assert traced.weight_bytes - g.prefill_counts.weight_bytes == 2 * LAYER * 9 // 16
    assert g.prefill_weight_bytes_saved == 3_170_893_824
    assert traced.bytes_read - g.prefill_counts.bytes_read == 3_170_893_824
    assert g.prefill_counts.macs == traced.macs  # counts do not change
    assert any("prefill's 2 routed token(s)" in n for n in g.notes)
    assert g.to_dict()["prefill"]["expert_weight_bytes_not_read"] == 3_170_893_824
    assert g.timing is not None and g.timing.ttft_s > 0


def test_prefill_batch_times_prompt(mixtral: object) -> None:
    g = generate(mixtral, prompt=4, new=1, batch=2)
    assert 2 * LAYER * 6561 % 65536 == 0
    assert g.prefill_weight_bytes_saved == 2 * LAYER * 6561 // 65536 == 564_350_976


def test_large_prefill_reads_every_expert() -> None:
    layer = ExpertLayer("experts", 8, 2, 0, 0)
    share = distinct_share(layer, 128)
    assert 1 - share == pytest.approx(0.75**128) and 0.75**128 < 1e-15
    gate_up = 1_879_048_192
    assert int(gate_up * share + 0.5) == gate_up  # rounds to the whole stack
