"""The charts of ``generate --plot`` priced from the phases' exact formulas in (batch, context):
each point equals a separate ``generate`` run at that batch (and the context sweep a
separate run over the whole range), exactly, with far fewer traces."""

from __future__ import annotations

import pytest
from tiny_llama import MISTRAL_W16, TINY_LLAMA, load_model

from modelmeter.analysis.generation_grid import traced_contexts
from modelmeter.analysis.polynomial import NotPolynomial

pytest.importorskip("transformers")

from modelmeter.usecases.generate import generate  # noqa: E402
from modelmeter.usecases.generate_grid import fit_generation  # noqa: E402
from modelmeter.usecases.generate_sweep import generation_sweeps, priced_at  # noqa: E402

LLAMA = {**TINY_LLAMA, "max_position_embeddings": 128}
MISTRAL = {**MISTRAL_W16, "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_model(tmp_path_factory, "llama-tiny", LLAMA)


@pytest.fixture(scope="module")
def mistral(tmp_path_factory: pytest.TempPathFactory) -> object:
    return load_model(tmp_path_factory, "mistral-w16", MISTRAL)


def test_traced_contexts_are_generates() -> None:
    # pieces of 10..29 cut at 15 and 17 (window 16: 16 - 1 and 16 + 1): 10..14, 15..16,
    # 17..29; generate traces each piece's first three contexts (fewer when shorter) and
    # its last: {10, 11, 12, 14}, {15, 16}, {17, 18, 19, 29}
    assert traced_contexts(10, 29, [15, 17]) == [10, 11, 12, 14, 15, 16, 17, 18, 19, 29]
    assert traced_contexts(8, 8, []) == [8]


@pytest.mark.parametrize(("cache", "sizes"), [
    ("paged", {}), ("dynamic", {}), ("paged", {"block_size": 32}),
    ("inplace", {"max_cache_len": 40}),
])  # fmt: skip
def test_each_batch_equals_a_separate_run(llama: object, cache: str, sizes: dict) -> None:
    asked = generate(llama, prompt=8, new=6, batch=2, hardware="h100-sxm", cache=cache, **sizes)
    grid = fit_generation(llama, prompt=8, lo=1, hi=127, breaks=[], far=5, cache=cache,
                          convention="exact", label="LlamaForCausalLM", pricing=None)  # fmt: skip
    # prefill: batches 1, 2, 3 (3 confirms the line) and the check at 5: 4 traces; decode:
    # (1, 1), (2, 1), (3, 1) along the batch, (1, 2), (1, 3) along the context, (2, 2) to
    # complete the 2 x 2 grid, the diagonal (3, 3), the checks (5, 127) and (5, 8): 9
    assert grid.traces == 4 + 9
    for b in (1, 3, 5):  # 3: a fitted batch; 5: the check; 1: fitted, asked batch apart
        timing, memory = priced_at(grid, asked, b, _spec())
        separate = generate(llama, prompt=8, new=6, batch=b, hardware="h100-sxm", cache=cache,
                            **sizes)  # fmt: skip
        assert timing == separate.timing  # TTFT, per-token first/mean/last, the exact sum
        assert memory == separate.memory  # activations at b, fits, largest batch
    four = generate(llama, prompt=8, new=6, batch=4, hardware="h100-sxm", cache=cache, **sizes)
    assert grid.prefill_at(4).total().cost == four.prefill.total().cost  # off the grid


def _spec() -> object:
    from modelmeter.hardware import load_spec

    return load_spec("h100-sxm")


def test_sweeps_equal_separate_runs(llama: object) -> None:
    s = generation_sweeps(llama, prompt=8, new=6, batch=2, hardware="h100-sxm", most=3)
    assert s.fitted and s.traces > 0
    assert [p.x for p in s.by_batch] == [1, 2, 4]
    for p in s.by_batch:
        g = generate(llama, prompt=8, new=6, batch=p.x, hardware="h100-sxm")
        assert (p.per_token_s, p.tokens_per_s, p.fits) == (
            g.timing.decode_mean_s, g.timing.tokens_per_s, g.memory.fits)  # fmt: skip
    # the context sweep: one generation over the model's 128 positions at batch 2
    whole = generate(llama, prompt=1, new=127, batch=2, hardware="h100-sxm")
    assert [p.x for p in s.by_context] == list(whole.timing.evaluated)
    assert [p.per_token_s for p in s.by_context] == list(whole.timing.times)
    traced = generation_sweeps(llama, prompt=8, new=6, batch=2, hardware="h100-sxm", most=3,
                               fit=False)  # fmt: skip
    assert not traced.fitted
    assert (traced.by_batch, traced.by_context) == (s.by_batch, s.by_context)


def test_paged_blocks_priced_alike(llama: object) -> None:
    # blocks of 32 tokens: 14 tokens take one block (32 slots) per sequence, a memory figure
    # only; the fitted points equal separate runs with the same block size, memory included
    calls: list[str] = []
    s = generation_sweeps(llama, prompt=8, new=6, batch=2, hardware="h100-sxm", most=3,
                          cache="paged", block_size=32,
                          progress=lambda stage, done, total: calls.append(stage))  # fmt: skip
    assert s.fitted and s.result.memory.allocated(14) == 32
    assert any(c.startswith("tracing for the charts") for c in calls)
    for p in s.by_batch:
        g = generate(llama, prompt=8, new=6, batch=p.x, hardware="h100-sxm", cache="paged",
                     block_size=32)  # fmt: skip
        assert (p.per_token_s, p.tokens_per_s, p.fits) == (
            g.timing.decode_mean_s, g.timing.tokens_per_s, g.memory.fits)  # fmt: skip
    whole = generate(llama, prompt=1, new=127, batch=2, hardware="h100-sxm", cache="paged",
                     block_size=32)  # fmt: skip
    assert [p.per_token_s for p in s.by_context] == list(whole.timing.times)


def test_static_cache_traces_every_point(llama: object) -> None:
    # a StaticCache's decode step costs its M slots at every context: not priced from the
    # DynamicCache formulas, each point is its own generate run (equal to a separate one)
    s = generation_sweeps(llama, prompt=8, new=6, batch=2, hardware="h100-sxm", most=3,
                          cache="static")  # fmt: skip
    assert not s.fitted and s.traces == 0
    for p in s.by_batch:
        g = generate(llama, prompt=8, new=6, batch=p.x, hardware="h100-sxm", cache="static")
        assert (p.per_token_s, p.tokens_per_s, p.fits) == (
            g.timing.decode_mean_s, g.timing.tokens_per_s, g.memory.fits)  # fmt: skip
    # the context range 1 .. 127 with a cache of 1 + 127 = 128 slots: the same step time
    whole = generate(llama, prompt=1, new=127, batch=2, hardware="h100-sxm", cache="static")
    assert [p.per_token_s for p in s.by_context] == list(whole.timing.times)
    assert len(set(whole.timing.times)) == 1


def test_sliding_window_pieces(mistral: object) -> None:
    # window 16: contexts 1..63 cut at 15 and 17, the piece 15..16 fitted per context; the
    # asked range 10..29 crosses both breaks
    s = generation_sweeps(mistral, prompt=10, new=20, batch=1, hardware="h100-sxm", most=3)
    assert s.fitted
    for p in s.by_batch[1:]:
        g = generate(mistral, prompt=10, new=20, batch=p.x, hardware="h100-sxm")
        assert (p.per_token_s, p.tokens_per_s) == (g.timing.decode_mean_s, g.timing.tokens_per_s)
    whole = generate(mistral, prompt=1, new=63, batch=1, hardware="h100-sxm")
    assert [p.per_token_s for p in s.by_context] == list(whole.timing.times)


def test_not_a_polynomial_traces_every_point(llama: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelmeter.usecases.generate_grid as grid

    def refuse(*args: object, **kwargs: object) -> None:
        raise NotPolynomial("refused")

    monkeypatch.setattr(grid, "fit_generation", refuse)
    s = generation_sweeps(llama, prompt=8, new=2, batch=1, hardware="h100-sxm", most=2)
    assert not s.fitted and s.traces == 0 and [p.x for p in s.by_batch] == [1, 2]


def test_host_time_priced_alike(llama: object) -> None:
    # with the eager host figures (per module call, charged by the roofline; per step,
    # added by the generation) the formulas' points still equal separate runs
    from dataclasses import replace

    host = replace(_spec(), module_call=20e-6, step_overhead=500e-6)
    s = generation_sweeps(llama, prompt=8, new=6, batch=1, hardware=host, most=2)
    assert s.fitted
    two = generate(llama, prompt=8, new=6, batch=2, hardware=host)
    assert s.by_batch[1].per_token_s == two.timing.decode_mean_s
    whole = generate(llama, prompt=1, new=127, batch=1, hardware=host)
    assert [p.per_token_s for p in s.by_context] == list(whole.timing.times)
