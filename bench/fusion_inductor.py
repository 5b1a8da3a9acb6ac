"""Predicted fused kernels against the kernels torch.compile (inductor) generates on this CPU
(not a test).

    python bench/fusion_inductor.py [--models llama,llama-bf16,resnet18,mobilenet_v3_small]

For each model: the kernels of the Report unfused, fused by the rules of each set in
``SETS`` (analysis/fusion.py), and the kernels inductor's wrapper code launches for the same
forward: its generated C++ kernels (``cpp_fused_*``) and its calls to library kernels
(``extern_kernels.mm``, ``torch.ops.mkldnn...``, an SDPA fallback ...), counted in the
``call`` functions of every compiled graph (``torch._inductor.utils.run_and_get_code``).
``llama``: the tiny Llama of tests/tiny_llama.py (float32; ``llama-bf16`` in bfloat16,
random weights), its prefill of 8 tokens and its decode step at context 8 (one token after
those 8 in a DynamicCache), both as ``generate`` traces them; the torchvision models at
1x3x224x224, compiled as is and with ``freezing`` (batch norms folded, activations fused
into the oneDNN convolutions, as for deployment). Compiling takes seconds to a minute per graph on two cores.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "src"))
sys.path.insert(0, str(HERE.parents[0] / "tests"))

import torch  # noqa: E402
from torch._inductor.utils import run_and_get_code  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.analysis.fusion import RULES, fusion_plan  # noqa: E402

SETS = {
    "earlier": ("elementwise", "conv-bn-act", "attention"),
    "all": RULES,
}
_CALL = re.compile(r"^\s*(?:\w+ = )?(cpp_fused_\w+|triton_\w+\.run|extern_kernels\.\w+|"
                   r"torch\.ops\.[\w.]+|aten\.[\w.]+)\(")


def inductor_kernels(codes: list[str]) -> Counter:
    """Kernel launches in the ``call`` functions of the compiled graphs' wrapper code: the
    generated kernels (C++ ``cpp_fused_*``, on a GPU ``triton_*``) as ``generated``, the
    others by name."""
    found: Counter = Counter()
    for code in codes:
        body = code.split("def call(", 1)[-1].split("\nrunner = ", 1)[0]
        for line in body.splitlines():
            m = _CALL.match(line)
            if m:
                name = m.group(1)
                generated = name.startswith(("cpp_fused", "triton_"))
                found["generated" if generated else name] += 1
    return found


def compiled_codes(fn: object, *args: object, freezing: bool = False) -> list[str]:
    """The wrapper code of every graph ``torch.compile(fn)(*args)`` compiles (``freezing``:
    parameters as constants: batch norms folded into convolutions, activations fused into
    oneDNN's, as a deployed inference graph is compiled)."""
    torch._dynamo.reset()
    with torch.no_grad(), torch._inductor.config.patch(freezing=freezing):
        _, codes = run_and_get_code(torch.compile(fn), *args)
    return codes


def predicted(report: object) -> dict[str, int]:
    out = {"unfused": sum(len(n.ops) for n in report.modules())}
    for name, rules in SETS.items():
        out[name] = fusion_plan(report, rules).kernels
    return out


def llama(dtype: str, device: str) -> list[tuple[str, dict, Counter]]:
    from tiny_llama import TINY_LLAMA
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    from modelmeter.usecases.generate import generate

    config = {**TINY_LLAMA, "torch_dtype": dtype}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.json"
        path.write_text(json.dumps(config))
        traced = generate(modelmeter.models.load(f"hf:{path}").model, prompt=8, new=2)
    cfg = LlamaConfig(**{k: v for k, v in TINY_LLAMA.items()
                         if k not in ("model_type", "architectures")})
    model = LlamaForCausalLM(cfg).to(device, getattr(torch, dtype)).eval()
    ids = torch.randint(0, 256, (1, 8), device=device)
    rows = []
    prefill = compiled_codes(lambda x: model(input_ids=x, use_cache=False,
                                             logits_to_keep=1).logits, ids)
    rows.append(("prefill", predicted(traced.prefill), inductor_kernels(prefill)))
    with torch.no_grad():
        cache = DynamicCache(config=cfg)
        model(input_ids=ids, past_key_values=cache, use_cache=True)
    step = compiled_codes(lambda x: model(input_ids=x, past_key_values=cache,
                                          use_cache=True).logits, ids[:, :1])
    rows.append(("decode", predicted(traced.decode), inductor_kernels(step)))
    return rows


def vision(name: str, device: str) -> list[tuple[str, dict, Counter]]:
    import torchvision

    model = getattr(torchvision.models, name)().to(device).eval()
    report = modelmeter.analyze(model, "1x3x224x224")
    x = torch.randn(1, 3, 224, 224, device=device)
    return [("forward", predicted(report), inductor_kernels(compiled_codes(model, x))),
            ("forward, freezing", predicted(report),
             inductor_kernels(compiled_codes(model, x, freezing=True)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="llama,llama-bf16,resnet18,mobilenet_v3_small")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cuda: inductor's triton kernels (untried)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print("| model | phase | ops (unfused) | " + " | ".join(f"fused: {s}" for s in SETS)
          + " | inductor kernels | of which generated / library |")
    print("|---|---|---:|" + "---:|" * len(SETS) + "---:|---|")
    for name in args.models.split(","):
        if name.startswith("llama"):
            rows = llama("bfloat16" if name.endswith("bf16") else "float32", args.device)
        else:
            rows = vision(name, args.device)
        for phase, pred, ind in rows:
            lib = ", ".join(f"{k} {v}" for k, v in sorted(ind.items()) if k != "generated")
            print(f"| {name} | {phase} | {pred['unfused']} | "
                  + " | ".join(str(pred[s]) for s in SETS)
                  + f" | {sum(ind.values())} | {ind['generated']} / {lib} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
