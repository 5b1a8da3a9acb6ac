"""Measured against predicted: the peak resident memory of a real training step on the CPU.

    python bench/train_memory.py hf:gpt2 --input 1x128            # ~124M parameters, AdamW fp32
    python bench/train_memory.py --mlp                             # a small MLP (seconds)

The prediction is ``modelmeter.train(...)``'s peak (traced on meta). The measurement runs the
same step for real, in a fresh process: random weights on the CPU, training mode, the forward,
the backward seeded with ones on every output that needs a gradient (as the trace does), the
outputs released, AdamW (foreach) stepping twice (the second step is the steady state the
trace counts). Peak RSS (``ru_maxrss``) minus the RSS before the model was built is the
measured peak; it also holds the allocator's overhead and whatever PyTorch caches, so it
is expected a little above the prediction. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys


def _rss_now() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _build(name: str | None):  # noqa: ANN202
    import torch

    if name is None:
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024)
        )
    from modelmeter.frontends.torch.building import load_on_device

    return load_on_device(name, torch.device("cpu")).model


def measure(name: str | None, shape: list[int], integer: bool) -> dict:
    """Run the step for real in this process; the bytes it added at its peak."""
    import torch

    w = torch.ones(8, 8, requires_grad=True)  # PyTorch's own start-up (autograd, kernels)
    (w @ w).sum().backward()
    opt0 = torch.optim.AdamW([w], foreach=True)
    opt0.step()
    del w, opt0
    base = _rss_now()
    model = _build(name).train()
    x = (torch.randint(0, 100, shape) if integer else torch.randn(shape))
    opt = torch.optim.AdamW(model.parameters(), foreach=True)
    from modelmeter.frontends.torch.tracer import _tensors  # outputs as the trace sees them

    for _ in range(2):
        out = model(x)
        outs = [t for t in _tensors(out) if t.requires_grad]
        torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
        del out, outs
        opt.step()
        opt.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"measured_peak_bytes": peak - base}


def predict(name: str | None, shape: list[int], integer: bool) -> dict:
    from modelmeter.usecases.train import train

    model = name if name is not None else _build(None)
    spec = "x".join(map(str, shape)) + (":int64" if integer else "")
    r = train(model, spec, optimizer="adamw", precision="fp32")
    return {"predicted_peak_bytes": r.peak.bytes, "peak_phase": r.peak.phase,
            "peak_op": r.peak.op, "model_states_bytes": r.model_states,
            "activations_bytes": r.memory.activations, "params": r.params[0]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=None, help="a model name (default: --mlp)")
    p.add_argument("--mlp", action="store_true", help="a 1024-4096-1024 MLP (8.4M parameters)")
    p.add_argument("--input", default=None, help="the input shape, e.g. 1x128 (token ids)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    name = None if args.mlp else args.model
    integer = name is not None and name.startswith("hf:")
    shape = [int(s) for s in (args.input or ("1x128" if integer else "64x1024")).split("x")]
    if args.child:  # the measurement, alone in its process
        print(json.dumps(measure(name, shape, integer)))
        return 0
    child = [sys.executable, __file__, *([name] if name else ["--mlp"]), "--input",
             "x".join(map(str, shape)), "--child"]  # fmt: skip
    # glibc's malloc: a fixed mmap threshold, so a freed large tensor goes back to the system
    # (the default threshold grows with freed blocks, and RSS would keep them)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    measured = json.loads(subprocess.run(child, check=True, capture_output=True, text=True,
                                         env=env).stdout.strip().splitlines()[-1])  # fmt: skip
    result = {"model": name or "mlp", "input": shape, **predict(name, shape, integer),
              **measured}  # fmt: skip
    result["ratio"] = result["measured_peak_bytes"] / result["predicted_peak_bytes"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
