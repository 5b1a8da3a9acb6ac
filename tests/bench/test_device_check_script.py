"""bench/device_check.py's parts without a device: the per-token clock of the generation
part, the rows that put measured beside predicted, the GPU check's within-2x count, and the
setups (the real run needs a GPU; `--device cpu --quick` runs the whole script, see
docs/measure.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import device_report  # noqa: E402
import gpu_check  # noqa: E402
import gpu_generation  # noqa: E402
import gpu_training  # noqa: E402


class _FakeClock:
    def __init__(self, ticks: list[float]) -> None:
        self.ticks = iter(ticks)

    def __call__(self) -> float:
        return next(self.ticks)


class _FakeModel:
    """``generate`` hands the prompt and each new token to the streamer (the clock moves
    between calls as the test scripted it)."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    def generate(self, ids: Any, streamer: Any, **kw: Any) -> None:
        assert kw["max_new_tokens"] == kw["min_new_tokens"] == self.tokens
        for _ in range(self.tokens + 1):  # the prompt, then every new token
            streamer.put(None)


def test_run_reads_ttft_and_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    # called at 0; prompt handed over at 1; tokens at 5, 7, 10
    monkeypatch.setattr(gpu_generation.time, "perf_counter", _FakeClock([0, 1, 5, 7, 10]))
    ttft, steps = gpu_generation._run(_FakeModel(3), None, {"max_new_tokens": 3,
                                                            "min_new_tokens": 3})
    assert ttft == 5  # 5 - 0: the call to the first token, the prefill included
    assert steps == [2, 3]  # 7 - 5, 10 - 7


def test_measure_case_medians(monkeypatch: pytest.MonkeyPatch) -> None:
    # new = 2: generate asks for 3 tokens (the prefill's, then 2 decode steps).
    # warm-up: a tick before, its run's 5 (the call, the prompt, 3 tokens), a tick after;
    # then 3 timed runs of 5 ticks each: the call, the prompt, tokens a, b, c
    runs = [[10, 11, 14, 15, 17],  # ttft 4, steps 1, 2
            [20, 21, 26, 28, 29],  # ttft 6, steps 2, 1
            [30, 31, 35, 38, 42]]  # ttft 5, steps 3, 4
    ticks = [0, 0, 0, 0, 0, 0, 1] + [t for r in runs for t in r]
    monkeypatch.setattr(gpu_generation.time, "perf_counter", _FakeClock(ticks))
    setup = {"config": {"vocab_size": 10}, "prompt": 4, "new": 2, "repeats": 3}
    case = gpu_generation.measure_case(_FakeModel(3), setup, "eager-dynamic", 1,
                                       torch.device("cpu"))
    assert case["warmup_s"] == 1  # the tick after the warm-up run, minus the one before
    assert case["ttft_s"] == 5  # median of 4, 6, 5
    assert case["steps_s"] == [2, 2]  # medians of (1, 2, 3) and (2, 1, 4)
    assert case["decode_first_s"] == 2 and case["decode_last_s"] == 2
    assert case["decode_mean_s"] == 1.5  # median of the runs' means 1.5, 1.5, 3.5
    assert case["end_to_end_s"] == 9  # median of 4+3, 6+3, 5+7
    assert case["peak_bytes"] is None and not case["compiled"]  # no CUDA, not compiled


def test_rows_put_measured_beside_predicted() -> None:
    part = {
        "setup": {"prompt": 8, "cases": [["eager-dynamic", 1]]},
        "measured": {"cases": [{"variant": "eager-dynamic", "batch": 1, "ttft_s": 0.02,
                                "decode_first_s": 0.01, "decode_mean_s": 0.01,
                                "decode_last_s": 0.012, "end_to_end_s": 0.5,
                                "peak_bytes": 4_000_000_000}]},
        "predicted": {"eager-dynamic b1": {"built-in": {"ttft_s": 0.01, "peak_bytes": 5e9}}},
    }  # fmt: skip
    rows = {r["quantity"]: r for r in device_report.rows(part)}
    assert len(rows) == len(gpu_generation.QUANTITIES)
    assert rows["time to first token"]["built-in pred/meas"] == pytest.approx(0.5)  # 10/20 ms
    assert rows["peak memory"]["built-in pred/meas"] == pytest.approx(1.25)  # 5 GB / 4 GB
    assert rows["per token, mean"]["built-in"] is None  # not predicted: no ratio
    assert rows["per token, mean"]["built-in pred/meas"] is None
    md = device_report.rows_md(device_report.rows(part))
    assert "| eager-dynamic b1 | time to first token (ms) | 20.00 | 10.00 | 0.50 |" in md
    assert "| eager-dynamic b1 | peak memory (GB) | 4.00 | 5.00 | 1.25 |" in md


def test_check_within_two_x() -> None:
    def case(model: str, ratio: float) -> dict:
        return {"model": model, "batch": 64, "dtype": "bfloat16", "measured_s": 1.0,
                "specs": {"built-in": {"predicted_s": ratio, "ratio": ratio,
                                       "flops_only_s": 0.1}}}  # fmt: skip

    cases = [case("a", 0.45), case("b", 0.5), case("c", 1.9), case("d", 2.5)]
    (row,) = gpu_check.summarise(cases, ["built-in"])
    assert row["within2_built-in"] == "2/4"  # 0.5 and 1.9 in [0.5, 2]; 0.45 and 2.5 out
    assert row["worst_built-in"] == 2.5  # 2.5x over is further off than 1 / 0.45 = 2.2x
    (r,) = device_report.check_rows({"summary": [row]})
    assert r["within 2x built-in"] == "2/4" and r["err built-in"] == row["err_built-in"]


def test_guess_h200() -> None:
    from modelmeter.hardware import builtin_names

    assert gpu_check.guess_datasheet("NVIDIA H200", builtin_names()) == "h200"
    assert gpu_check.guess_datasheet("NVIDIA H100 80GB HBM3", builtin_names()) == "h100-sxm"


def test_setups(tmp_path: Path) -> None:
    gen = gpu_generation.setup(tmp_path, "cuda", quick=False)
    # the Llama-3-8B preset in bfloat16, the compiled variant last (it may be cut short)
    assert gen["config"]["hidden_size"] == 4096 and gen["dtype"] == "bfloat16"
    assert gen["cases"][-1] == ["compiled-static", 1]
    assert Path(gen["source"].removeprefix("hf:")).is_file()
    train = gpu_training.setup(tmp_path, "cuda", quick=False)
    labels = [gpu_training.label_of(c) for c in train["cases"]]
    assert labels == ["gpt2 8x1024 fp32", "gpt2 8x1024 bf16-mixed", "llama-1b 4x1024 fp32",
                      "llama-1b 4x1024 bf16-mixed"]  # fmt: skip
    jobs = device_report.prediction_jobs({"setup": gen})
    assert [label for label, _ in jobs] == ["eager-dynamic b1", "eager-dynamic b16",
                                            "eager-static b1", "compiled-static b1"]


def test_llama_1b_parameters(tmp_path: Path) -> None:
    from modelmeter.models import load

    (case, *_) = [c for c in gpu_training.setup(tmp_path, "cuda", False)["cases"]
                  if c["model"] == "llama-1b"]  # fmt: skip
    model = load(case["source"]).model
    # embeddings 128256*2048 (tied with the head) = 262,668,288; per layer: q, o 2048*2048
    # each, k, v 2048*512 each, MLP 3*2048*8192, two norms 2*2048 = 60,821,504; 16 layers =
    # 973,144,064; final norm 2048: 1,235,814,400
    assert sum(p.numel() for p in model.parameters()) == 1_235_814_400
