"""Issue 12 on a device: a real training step's ``torch.cuda.max_memory_allocated`` and step
time beside modelmeter's ``train()`` prediction of the peak and the step time. Run by
bench/device_check.py (a part of its one command); alone:

    python bench/gpu_training.py SETUP.json RESULT.json [--device cuda] [--deadline T]

The step is bench/train_memory.py's (the one the trace counts), on the device: random fp32
weights, training mode, the forward (under ``torch.autocast`` to bfloat16 for
``bf16-mixed``), the backward seeded with ones on every output that needs a gradient, the
outputs released, AdamW (foreach) stepping, gradients set to None. Two warm-up steps (the
first allocates the optimizer's state); then the peak is counted afresh and ``--steps``
timed steps run (synchronised around each): the median step time and the peak over them
(weights, optimizer state and the step's own gradients and activations: the steady step the
trace counts). The first steps' peak is kept too (``first_peak_bytes``). Float32 matmuls run
with TF32 off, as the prediction assumes.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import device_parts as dp  # noqa: E402 - puts src/ on sys.path

# A Llama-3.2-1B-shaped config (no rope scaling), float32 weights: 1,235,814,400 parameters
LLAMA_1B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
    "intermediate_size": 8192, "num_attention_heads": 32, "num_key_value_heads": 8,
    "num_hidden_layers": 16, "vocab_size": 128256, "max_position_embeddings": 8192,
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "float32",
}  # fmt: skip
QUICK_GPT2 = {"n_embd": 64, "n_head": 2, "n_layer": 2, "n_positions": 128, "vocab_size": 500,
              "bos_token_id": 0, "eos_token_id": 0}  # fmt: skip
QUICK_LLAMA = {"hidden_size": 64, "intermediate_size": 172, "num_attention_heads": 4,
               "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 500}  # fmt: skip
PRECISIONS = ("fp32", "bf16-mixed")


def setup(folder: Path, device: str, quick: bool) -> dict[str, Any]:
    """GPT-2 (124M) at 8x1024 tokens and the 1B Llama shape at 4x1024, each in fp32 and
    bf16-mixed, on a GPU; the same two families tiny on the CPU (``quick``)."""
    gpt2 = dp.preset("gpt2")
    if quick or device == "cpu":
        models = [("tiny-gpt2", {**gpt2, **QUICK_GPT2}, "2x32"),
                  ("tiny-llama", {**LLAMA_1B, **QUICK_LLAMA}, "2x32")]  # fmt: skip
    else:
        models = [("gpt2", gpt2, "8x1024"), ("llama-1b", LLAMA_1B, "4x1024")]
    cases = []
    for name, config, shape in models:
        source = dp.config_source(config, folder, name)
        cases += [{"model": name, "source": source, "config": config, "input": shape,
                   "precision": prec} for prec in PRECISIONS]  # fmt: skip
    return {"cases": cases, "warmup": 2, "steps": 3 if quick else 5}


def _outputs(out: Any) -> list[Any]:
    """The outputs' tensors as the trace sees them (train_memory.py seeds the same)."""
    try:
        from modelmeter.frontends.torch.tracer import _tensors
    except ImportError:  # renamed: fall back to the same walk (tensors, lists, dicts)
        import torch

        def _tensors(obj: Any) -> Any:
            if isinstance(obj, torch.Tensor):
                yield obj
            elif isinstance(obj, (list, tuple, dict)):
                for o in obj.values() if isinstance(obj, dict) else obj:
                    yield from _tensors(o)

    return [t for t in _tensors(out) if t.requires_grad]


def _step(model: Any, x: Any, opt: Any, mixed: bool, dev: Any) -> None:
    import torch

    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if mixed else contextlib.nullcontext()
    with ctx:
        out = model(x)
    outs = _outputs(out)
    torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
    del out, outs
    opt.step()
    opt.zero_grad(set_to_none=True)


def _timed_steps(n: int, model: Any, x: Any, opt: Any, mixed: bool, dev: Any) -> list[float]:
    """Wall seconds of each of ``n`` steps, the device synchronised after each."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        _step(model, x, opt, mixed, dev)
        dp.sync(dev)
        times.append(time.perf_counter() - t)
    return times


def measure_case(case: dict[str, Any], setup_: dict[str, Any], dev: Any) -> dict[str, Any]:
    import torch

    from modelmeter.frontends.torch.building import load_on_device

    torch.manual_seed(0)
    model = load_on_device(case["source"], dev).model.to(device=dev, dtype=torch.float32)
    model.train()
    weights = dp.reset_peak(dev)
    shape = [int(s) for s in case["input"].split("x")]
    x = torch.randint(0, model.config.vocab_size, shape, device=dev)
    opt = torch.optim.AdamW(model.parameters(), foreach=True)
    mixed = case["precision"] == "bf16-mixed"
    warm = _timed_steps(setup_["warmup"], model, x, opt, mixed, dev)
    first_peak = dp.peak(dev)
    before = dp.reset_peak(dev)
    times = _timed_steps(setup_["steps"], model, x, opt, mixed, dev)
    out = {**case, "parameters": sum(p.numel() for p in model.parameters()),
           "weights_bytes": weights, "allocated_between_steps_bytes": before,
           "first_peak_bytes": first_peak, "peak_bytes": dp.peak(dev), "warmup_s": warm,
           "step_s": statistics.median(times), "steps_s": times}  # fmt: skip
    del model, opt, x
    return out


def measure(setup_: dict[str, Any], result: Path, dev: Any, deadline: float) -> dict[str, Any]:
    """Every case, the results rewritten after each (``running``: the case in flight)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    doc: dict[str, Any] = {"versions": dp.versions(), "tf32": False, "cases": [],
                           "errors": [], "skipped": []}  # fmt: skip
    cases = ((label_of(c), lambda c=c: measure_case(c, setup_, dev)) for c in setup_["cases"])
    return dp.run_cases(doc, cases, result, dev, deadline)


def label_of(case: dict[str, Any]) -> str:
    return f"{case['model']} {case['input']} {case['precision']}"


def predict(case: dict[str, Any], spec: Any) -> dict[str, Any]:
    """modelmeter's ``train()`` of the case on ``spec``: the peak and the step time."""
    from modelmeter.usecases.train import train

    r = train(case["source"], f"{case['input']}:int64", optimizer="adamw",
              precision=case["precision"], hardware=spec)  # fmt: skip
    assert r.time is not None
    return {"peak_bytes": r.peak.bytes, "peak_phase": r.peak.phase, "peak_op": r.peak.op,
            "model_states_bytes": r.model_states, "activation_bytes": r.memory.activations,
            "step_s": r.time.step_s, "phases_s": dict(r.time.phases),
            "parameters": r.params[0]}  # fmt: skip


QUANTITIES = (("peak_bytes", "peak memory"), ("step_s", "step time"))


def main(argv: list[str] | None = None) -> int:
    measure(*dp.part_args(__doc__.splitlines()[0], argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
