"""The eager host time of generation beyond the per-op figure: per nn.Module call and per
generation step (``[overhead] module``/``step``), its fit from two tiny Llamas, and what it
adds to a generation's times."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from modelmeter.analysis.generation_host import HostTime, module_calls
from modelmeter.hardware import HardwareSpecError, dump_toml, load_spec, spec_from_dict
from modelmeter.hardware.calibrate_host import fit_host

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

TINY = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 32,
    "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
    "num_hidden_layers": 2, "vocab_size": 64, "max_position_embeddings": 128,
}  # fmt: skip


def test_fit_from_two_depths() -> None:
    # residuals (measured - predicted): 1,000 - 600 = 400us at 19 calls, 2,800 - 1,620 =
    # 1,180us at 58 calls: module = (1,180 - 400) / (58 - 19) = 780 / 39 = 20us;
    # step = 400 - 19 x 20 = 20us
    fit = fit_host([(1, 19, 1000e-6, 600e-6), (4, 58, 2800e-6, 1620e-6)])
    assert fit.module_s == pytest.approx(20e-6) and fit.step_s == pytest.approx(20e-6)
    # a deeper model measured faster than predicted per layer: no negative time
    fit = fit_host([(1, 19, 1000e-6, 600e-6), (4, 58, 1000e-6, 1620e-6)])
    assert fit.module_s == 0.0 and fit.step_s == pytest.approx(400e-6)


def test_only_eager() -> None:
    spec = replace(load_spec("h100-sxm"), module_overhead=20e-6, step_overhead=500e-6)
    assert HostTime.of(spec) == HostTime(20e-6, 500e-6)
    assert not HostTime.of(spec, "graphs") and not HostTime.of(load_spec("h100-sxm"))


def test_spec_file_round_trip() -> None:
    spec = replace(load_spec("h100-sxm"), module_overhead=20e-6, step_overhead=500e-6)
    doc = tomllib.loads(dump_toml(spec))
    assert doc["overhead"]["module"] == "20us" and doc["overhead"]["step"] == "500us"
    again = spec_from_dict(doc)
    assert (again.module_overhead, again.step_overhead) == (20e-6, 500e-6)
    doc["overhead"]["module"] = -1
    with pytest.raises(HardwareSpecError, match="module"):
        spec_from_dict(doc)


def test_generation_adds_host_time(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("transformers")
    from modelmeter.models import load
    from modelmeter.usecases.generate import generate

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    model = load(f"hf:{path}").model
    chip = load_spec("h100-sxm")
    host = replace(chip, module_overhead=20e-6, step_overhead=500e-6)
    a = generate(model, prompt=8, new=5, hardware=chip)
    b = generate(model, prompt=8, new=5, hardware=host)
    # module calls per step: the causal LM, its model, the embedding, the rotary embedding,
    # the final norm and the lm_head (6), and per decoder layer 13 (the layer, its two
    # norms, attention and its q, k, v, o projections, the MLP and its gate, up, down and
    # activation): 6 + 2 x 13 = 32, in the prefill and in each decode step
    assert module_calls(a.prefill) == module_calls(a.decode) == 32
    extra = 32 * 20e-6 + 500e-6  # 1.14 ms per step
    assert b.timing.ttft_s == pytest.approx(a.timing.ttft_s + extra)
    assert b.timing.decode_total_s == pytest.approx(a.timing.decode_total_s + 5 * extra)
    assert b.timing.decode_first_s == pytest.approx(a.timing.decode_first_s + extra)
    assert any("per module call" in n for n in b.timing.notes)
    graphs = generate(model, prompt=8, new=5, hardware=host, roofline_options={"runtime": "graphs"})
    plain = generate(model, prompt=8, new=5, hardware=chip, roofline_options={"runtime": "graphs"})
    assert graphs.timing.decode_total_s == plain.timing.decode_total_s
