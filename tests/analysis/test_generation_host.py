"""The eager host time beyond the per-op figure: per nn.Module call (``[overhead]
module_call``, charged by the roofline) and per generation step (``[overhead] step``, added by
generate), their fit from two tiny Llamas, and what they add to a generation's times: the
module calls once, never a second time."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from modelmeter.analysis.generation_host import HostTime
from modelmeter.analysis.module_calls import calls_before
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
    spec = replace(load_spec("h100-sxm"), module_call=20e-6, step_overhead=500e-6)
    assert HostTime.of(spec) == HostTime(500e-6)
    assert not HostTime.of(spec, "graphs") and not HostTime.of(load_spec("h100-sxm"))


def test_spec_file_round_trip() -> None:
    spec = replace(load_spec("h100-sxm"), step_overhead=500e-6)
    doc = tomllib.loads(dump_toml(spec))
    assert doc["overhead"]["step"] == "500us" and "module" not in doc["overhead"]
    assert spec_from_dict(doc).step_overhead == 500e-6
    doc["overhead"]["step"] = -1
    with pytest.raises(HardwareSpecError, match="step"):
        spec_from_dict(doc)
    del doc["overhead"]["step"]
    doc["overhead"]["module"] = "20us"  # one figure per module call: module_call
    with pytest.raises(HardwareSpecError, match="module"):
        spec_from_dict(doc)


def _tiny(tmp_path) -> object:  # noqa: ANN001
    pytest.importorskip("transformers")
    from modelmeter.models import load

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return load(f"hf:{path}").model


def test_generation_adds_the_step_time(tmp_path) -> None:  # noqa: ANN001
    from modelmeter.usecases.generate import generate

    model = _tiny(tmp_path)
    chip = load_spec("h100-sxm")
    host = replace(chip, step_overhead=500e-6)
    a = generate(model, prompt=8, new=5, hardware=chip)
    b = generate(model, prompt=8, new=5, hardware=host)
    # 500 us once in the prefill and once in each of the 5 decode steps: 2.5 ms
    assert b.timing.ttft_s == pytest.approx(a.timing.ttft_s + 500e-6)
    assert b.timing.decode_total_s == pytest.approx(a.timing.decode_total_s + 5 * 500e-6)
    assert b.timing.decode_first_s == pytest.approx(a.timing.decode_first_s + 500e-6)
    assert b.timing.times == pytest.approx([t + 500e-6 for t in a.timing.times])
    assert any("per step" in n for n in b.timing.notes)
    graphs = generate(model, prompt=8, new=5, hardware=host, roofline_options={"runtime": "graphs"})
    plain = generate(model, prompt=8, new=5, hardware=chip, roofline_options={"runtime": "graphs"})
    assert graphs.timing.decode_total_s == plain.timing.decode_total_s


def test_module_calls_charged_once(tmp_path) -> None:  # noqa: ANN001
    from modelmeter.usecases.generate import generate

    model = _tiny(tmp_path)
    # the datasheet figures alone (its [attainable] section has its own module_call), in
    # series (no launch queue): the charges add up
    chip = replace(load_spec("h100-sxm"), attainable=None, overlap=False)
    calls = replace(chip, module_call=20e-6)
    a = generate(model, prompt=8, new=5, hardware=chip)
    b = generate(model, prompt=8, new=5, hardware=calls)
    # module calls per step: the causal LM, its model, the embedding, the rotary embedding,
    # the final norm and the lm_head (6), and per decoder layer 13 (the layer, its two
    # norms, attention and its q, k, v, o projections, the MLP and its gate, up, down and
    # activation): 6 + 2 x 13 = 32, in the prefill and in each decode step; the layers'
    # ModuleList holds them but is never called (calls 0 in the report): it adds none
    assert next(m for m in a.decode.modules() if m.name == "model.layers").calls == 0
    assert sum(calls_before(a.prefill)) == sum(calls_before(a.decode)) == 32
    extra = 32 * 20e-6  # 640 us per step, charged by the roofline alone (not again)
    assert b.timing.ttft_s == pytest.approx(a.timing.ttft_s + extra)
    assert b.timing.decode_total_s == pytest.approx(a.timing.decode_total_s + 5 * extra)
    assert not any("per step" in n for n in b.timing.notes)


def test_hardware_show_lists_the_step_time() -> None:
    from modelmeter.render.hardware import show_lines

    spec = replace(load_spec("h100-sxm"), module_call=20e-6, step_overhead=117e-6)
    lines = dict(show_lines(spec))
    # 117e-6 s = 117 us; 20e-6 s = 20 us (the file's own figure, beside [attainable]'s 3 us)
    assert lines["overhead.step"] == "117 us per generation step (eager)"
    assert lines["overhead.module_call"] == "20 us per module call (eager)"
    assert "overhead.step" not in dict(show_lines(load_spec("h100-sxm")))


def test_timing_the_tiny_llamas_leaves_the_callers_rng_as_it_was() -> None:
    import torch

    from modelmeter.frontends.torch.generate_bench import DEPTHS, tiny_generations

    torch.manual_seed(1234)
    expected = torch.rand(3)  # what the caller's next draws are
    torch.manual_seed(1234)
    timed = tiny_generations(rounds=1)  # seeds 0 and draws its prompts inside
    assert [t.layers for t in timed] == list(DEPTHS)
    assert torch.equal(torch.rand(3), expected)
