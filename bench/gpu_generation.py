"""Issue 11 on a device: transformers' own ``generate`` of a Llama-shaped model (random
weights) measured beside modelmeter's ``generate()`` prediction. Run by bench/device_check.py
(a part of its one command); alone:

    python bench/gpu_generation.py SETUP.json RESULT.json [--device cuda] [--deadline T]

measures the setup's cases (written by :func:`setup`) and rewrites RESULT.json after each
one. The measurement is bench/generation_measured.py's on a device: greedy, ``min_new_tokens``
= ``max_new_tokens`` = new + 1 (random weights must not stop early; the prefill gives the
first token, then come the ``new`` decode steps modelmeter predicts), median of the timed runs after a
warm-up; a streamer takes the time of every token as it reaches the host (``generate`` brings
each token to the host anyway to check for a stop), so one run gives the time to the first
token (from the call) and every decode step's latency. The variants:

- ``eager-dynamic``: eager, transformers' DynamicCache (predicted: runtime eager, cache
  layout dynamic);
- ``eager-static``: ``cache_implementation="static"`` with ``disable_compile=True``
  (predicted: eager, static);
- ``compiled-static``: the static cache with ``generate``'s own compilation of the decode
  step (``torch.compile`` mode ``reduce-overhead``: CUDA graphs; on the CPU quick run the
  ``eager`` backend, to exercise the path); predicted: runtime ``graphs``, static. Its
  warm-up run holds the compilation (``warmup_s``); the part's deadline cuts it short if it
  runs over, and the case is recorded as skipped.

Peak memory: ``torch.cuda.max_memory_allocated`` over the timed runs (weights included)
against the prediction's weights + KV cache + activations (``GenerationMemory.total_bytes``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import device_parts as dp  # noqa: E402 - puts src/ on sys.path

VARIANTS: dict[str, dict[str, Any]] = {
    "eager-dynamic": {"cache": "dynamic", "runtime": "eager", "static": False, "compile": False},
    "eager-static": {"cache": "static", "runtime": "eager", "static": True, "compile": False},
    "compiled-static": {"cache": "static", "runtime": "graphs", "static": True, "compile": True},
}
# the tiny CPU shape: bench/generation_measured.py's Llama shape, made smaller still
QUICK_CHANGES = {"hidden_size": 128, "intermediate_size": 344, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1000}  # fmt: skip


def setup(folder: Path, device: str, quick: bool, model: str = "llama-3-8b") -> dict[str, Any]:
    """The cases to measure: the Llama-3-8B preset (``model`` "llama-1b": the 1B Llama shape
    of gpu_training.py, for a shorter compilation) in bfloat16 on a GPU (prompt 512, 64 new
    tokens; eager at batch 1 and 16, the static cache eager and compiled at batch 1), or a
    tiny Llama shape in float32 on the CPU (``quick``)."""
    if model == "llama-1b" and not (quick or device == "cpu"):
        from gpu_training import LLAMA_1B

        config = {**LLAMA_1B, "torch_dtype": "bfloat16"}
        name, prompt, new, batches = "llama-1b", 512, 64, (1, 16)
    elif quick or device == "cpu":
        from generation_measured import CONFIG

        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **CONFIG,
                  **QUICK_CHANGES, "torch_dtype": "float32"}  # fmt: skip
        name, prompt, new, batches = "tiny-llama", 16, 4, (1, 2)
    else:
        config = dp.preset("llama-3-8b", torch_dtype="bfloat16")
        name, prompt, new, batches = "llama-3-8b", 512, 64, (1, 16)
    cases = [["eager-dynamic", b] for b in batches]
    cases += [["eager-static", batches[0]], ["compiled-static", batches[0]]]
    return {
        "model": name, "config": config, "source": dp.config_source(config, folder, name),
        "dtype": config["torch_dtype"], "prompt": prompt, "new": new, "cases": cases,
        "repeats": 2 if quick else 3,
    }  # fmt: skip


class _Clock:
    """A ``generate`` streamer that only takes the time of each ``put`` (the prompt, then
    every new token, each already on the host)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: Any) -> None:  # noqa: ARG002 - the tokens are not needed
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def _kwargs(variant: str, dev: Any, new: int) -> dict[str, Any]:
    v = VARIANTS[variant]
    # new + 1 tokens: the prefill gives the first, then ``new`` decode steps (as predicted)
    kw: dict[str, Any] = {"max_new_tokens": new + 1, "min_new_tokens": new + 1,
                          "do_sample": False, "pad_token_id": 0}  # fmt: skip
    if v["static"]:
        kw["cache_implementation"] = "static"
        if not v["compile"]:
            kw["disable_compile"] = True
        elif dev.type != "cuda":  # exercise generate's compile path on the CPU, cheaply
            from transformers.generation.configuration_utils import CompileConfig

            cc = CompileConfig(backend="eager")
            cc.mode = None  # a mode is for inductor only
            cc._compile_all_devices = True
            kw["compile_config"] = cc
    return kw


def _run(model: Any, ids: Any, kw: dict[str, Any]) -> tuple[float, list[float]]:
    """One generate: (time to the first token, each decode step's latency)."""
    import torch

    clock = _Clock()
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(ids, streamer=clock, **kw)
    t = clock.times[1:]  # times[0]: the prompt handed over before the prefill
    return t[0] - t0, [b - a for a, b in zip(t, t[1:])]


def measure_case(model: Any, setup_: dict[str, Any], variant: str, batch: int,
                 dev: Any) -> dict[str, Any]:  # fmt: skip
    """Warm-up, then the timed runs: medians of TTFT and of each decode step; peak memory."""
    import torch

    vocab = setup_["config"]["vocab_size"]
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(0, vocab, (batch, setup_["prompt"]), generator=gen).to(dev)
    kw = _kwargs(variant, dev, setup_["new"])
    t = time.perf_counter()
    _run(model, ids, kw)  # warm-up (the compilation, for compiled-static)
    warmup_s = time.perf_counter() - t
    before = dp.reset_peak(dev)
    runs = [_run(model, ids, kw) for _ in range(setup_["repeats"])]
    steps = [statistics.median(r[1][i] for r in runs) for i in range(len(runs[0][1]))]
    ttft = statistics.median(r[0] for r in runs)
    return {
        "variant": variant, "batch": batch, "warmup_s": warmup_s,
        "compiled": hasattr(model, "_compiled_call"),
        "ttft_s": ttft, "decode_first_s": steps[0] if steps else None,
        "decode_mean_s": statistics.median(statistics.fmean(r[1]) for r in runs) if steps
        else None,
        "decode_last_s": steps[-1] if steps else None,
        "end_to_end_s": statistics.median(r[0] + sum(r[1]) for r in runs),
        "steps_s": steps, "allocated_before_bytes": before, "peak_bytes": dp.peak(dev),
    }  # fmt: skip


def measure(setup_: dict[str, Any], result: Path, dev: Any, deadline: float) -> dict[str, Any]:
    """Every case of the setup, the results rewritten after each (``running`` names the case
    in flight, so a run cut short says what it was doing)."""
    import torch

    from modelmeter.frontends.torch.building import load_on_device

    doc: dict[str, Any] = {"versions": dp.versions(), "cases": [], "errors": [], "skipped": []}
    doc["running"] = f"building {setup_['model']}"
    dp.write_json(result, doc)
    t = time.perf_counter()
    torch.manual_seed(0)
    try:
        model = load_on_device(setup_["source"], dev).model.eval()
    except Exception as e:  # noqa: BLE001 - recorded in the results, not only on stderr
        doc["errors"].append(f"building {setup_['model']}: {dp.error_text(e)}")
        dp.write_json(result, doc)
        raise
    doc["build_s"] = time.perf_counter() - t
    doc["parameters"] = sum(p.numel() for p in model.parameters())
    doc["weights_bytes"] = dp.reset_peak(dev)
    cases = ((f"{v} b{b}", lambda v=v, b=b: measure_case(model, setup_, v, b, dev))
             for v, b in setup_["cases"])  # fmt: skip
    return dp.run_cases(doc, cases, result, dev, deadline)


def predict(setup_: dict[str, Any], variant: str, batch: int, spec: Any) -> dict[str, Any]:
    """modelmeter's ``generate()`` for one case on ``spec`` (the variant's runtime and
    cache layout)."""
    from modelmeter.usecases.generate import generate

    v = VARIANTS[variant]
    g = generate(setup_["source"], prompt=setup_["prompt"], new=setup_["new"], batch=batch,
                 hardware=spec, cache=v["cache"],
                 roofline_options={"runtime": v["runtime"]})  # fmt: skip
    t, m = g.timing, g.memory
    assert t is not None
    return {
        "ttft_s": t.ttft_s, "decode_first_s": t.decode_first_s, "decode_mean_s": t.decode_mean_s,
        "decode_last_s": t.decode_last_s, "end_to_end_s": t.end_to_end_s,
        "peak_bytes": m.total_bytes, "weights_bytes": m.weight_bytes,
        "kv_bytes": m.kv_total_bytes,
        "activation_bytes": max(m.prefill_activation_bytes, m.decode_activation_bytes),
        "prefill_bound": t.prefill_bound, "decode_bound": t.decode_first_bound,
        "figures": t.figures, "runtime": t.runtime, "cache": v["cache"],
    }  # fmt: skip


QUANTITIES = (("ttft_s", "time to first token"), ("decode_first_s", "per token, first"),
              ("decode_mean_s", "per token, mean"), ("decode_last_s", "per token, last"),
              ("end_to_end_s", "prefill + decode"), ("peak_bytes", "peak memory"))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    measure(*dp.part_args(__doc__.splitlines()[0], argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
