"""Analysis speed, measured side by side in one run (not a test).

For each model, built once on the meta device, it times (median of several repeats):
  plain   a plain meta-device forward of the model under torch.no_grad()
  ours    modelmeter.analyze(model, meta input)  (copies, tracing, counting, tree)
  fcm     the same forward under PyTorch's FlopCounterMode
and prints ours/plain and ours/fcm. Then it analyses a Llama-3-70B shape at 4096 tokens in a
fresh process and reports its wall time and peak RSS.

    .venv/bin/python bench/speed.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import modelmeter
from modelmeter.models import load

VISION = [
    ("resnet50", 224),
    ("mobilenet_v3_large", 224),
    ("efficientnet_b0", 224),
    ("convnext_tiny", 224),
    ("swin_t", 224),
    ("vit_b_16", 224),
    ("vit_l_16", 224),
    ("inception_v3", 299),
]
LLMS = [("gpt2", 1024), ("llama-2-7b", 2048)]


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _row(label: str, model: Any, args: tuple, kwargs: dict, repeats: int) -> dict[str, Any]:
    def plain() -> None:
        with torch.no_grad():
            model(*args, **kwargs)

    def ours() -> None:
        modelmeter.analyze(model, args, kwargs=kwargs or None)

    def fcm() -> None:
        with FlopCounterMode(display=False), torch.no_grad():
            model(*args, **kwargs)

    t = {f.__name__: _median_time(f, repeats) for f in (plain, ours, fcm)}
    return {"model": label, **t}


def _vision(name: str, size: int) -> tuple[Any, tuple, dict]:
    with torch.device("meta"):
        m = torchvision.models.get_model(name).eval()
    return m, (torch.empty(1, 3, size, size, device="meta"),), {}


def _llm(name: str, tokens: int) -> tuple[Any, tuple, dict]:
    m = load(f"hf:{name}").model
    return m, (), {"input_ids": torch.zeros(1, tokens, dtype=torch.long, device="meta")}


BIG = """
import resource, time, torch, modelmeter
from modelmeter.models import load
t = time.perf_counter()
m = load("hf:llama-3-70b").model
built = time.perf_counter() - t
r = modelmeter.analyze(m, kwargs={"input_ids": "1x4096:int64"})
total = time.perf_counter() - t
print(json.dumps({"build_s": built, "total_s": total, "params": r.total().params,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="two models only")
    opts = ap.parse_args()
    torch.set_num_threads(1)
    cases = [(n, lambda n=n, s=s: _vision(n, s)) for n, s in VISION]
    cases += [(f"{n} ({t} tok)", lambda n=n, t=t: _llm(n, t)) for n, t in LLMS]
    if opts.quick:
        cases = cases[:1] + cases[-2:-1]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, median of "
          f"{opts.repeats}; times in ms")
    print(f"{'model':28} {'plain':>9} {'ours':>9} {'fcm':>9} {'ours/plain':>11} {'ours/fcm':>9}"
          f" {'fcm/plain':>10}")
    for label, make in cases:
        model, args, kwargs = make()
        r = _row(label, model, args, kwargs, opts.repeats)
        print(f"{label:28} {r['plain'] * 1e3:9.1f} {r['ours'] * 1e3:9.1f} {r['fcm'] * 1e3:9.1f}"
              f" {r['ours'] / r['plain']:11.2f} {r['ours'] / r['fcm']:9.2f}"
              f" {r['fcm'] / r['plain']:10.2f}")
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + BIG], capture_output=True, text=True, check=True
    )
    big = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"llama-3-70b shape, 4096 tokens, fresh process: build {big['build_s']:.2f} s, "
          f"build + analyse {big['total_s']:.2f} s, peak RSS {big['rss_mb']:.0f} MB, "
          f"{big['params']:,} params")


if __name__ == "__main__":
    main()
