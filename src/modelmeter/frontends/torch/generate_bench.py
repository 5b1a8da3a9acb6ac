"""Tiny transformers Llamas generating on a device, timed: the host time of eager generation
(``modelmeter calibrate``; what the times mean is worked out in
:mod:`modelmeter.hardware.calibrate_host`).

Each model is so small (hidden 32, MLP 64, vocabulary 64) that its kernels take next to
nothing: a step's time is the host's, Python's per module call, per op and per step of the
``generate`` loop. Two depths (1 and 4 decoder layers) differ only in their layers' modules
and ops, which separates the time per module call from the time per step.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

TINY = {
    "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
    "num_key_value_heads": 1, "vocab_size": 64, "max_position_embeddings": 256,
}  # fmt: skip
DEPTHS = (1, 4)
PROMPT, NEW = 8, 16


@dataclass(frozen=True)
class TinyGeneration:
    """One tiny Llama's timings: ``model`` (on the meta device, for the analysis), the
    median time to first token (``generate(max_new_tokens=1)``) and per decode step (the
    whole with ``NEW + 1`` tokens less the first, over ``NEW``)."""

    layers: int
    model: Any
    ttft_s: float
    step_s: float


def _median(fn: Any, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tiny_generations(device: str = "cpu", rounds: int = 5) -> list[TinyGeneration]:
    """The tiny Llamas' timings at each depth of :data:`DEPTHS`; empty without transformers."""
    try:
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        return []
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        return [_timed(LlamaForCausalLM, LlamaConfig(**TINY, num_hidden_layers=n), device,
                       rounds) for n in DEPTHS]  # the caller's RNG left as it was


def _timed(cls: Any, config: Any, device: str, rounds: int) -> TinyGeneration:
    """One tiny Llama built with seed 0 on ``device`` and timed (``tiny_generations``)."""
    torch.manual_seed(0)
    model = cls(config).eval().to(device)
    ids = torch.randint(0, TINY["vocab_size"], (1, PROMPT), device=device)

    def run(n: int) -> Any:
        def go() -> None:
            with torch.no_grad():
                model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=0)  # fmt: skip
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        return go

    ttft = _median(run(1), rounds)
    whole = _median(run(NEW + 1), rounds)
    with torch.device("meta"):
        meta = cls(config).eval()
    return TinyGeneration(config.num_hidden_layers, meta, ttft, (whole - ttft) / NEW)


__all__ = ["DEPTHS", "NEW", "PROMPT", "TINY", "TinyGeneration", "tiny_generations"]
