"""How much nn.MultiheadAttention's fused inference path changes a ViT's time (not a test).

The analysis traces on the meta device, where PyTorch always takes MultiheadAttention's
unfused path (matmul, softmax and head reshapes as separate ops); a CUDA or CPU run in
inference mode takes the fused ``_native_multi_head_attention`` instead. This times
torchvision's ViT-B/16 both ways on one device, beside the roofline's prediction, to show
how much of the prediction error on ViTs is that difference of paths:

    python bench/mha_fastpath.py --device cuda --hardware SPEC.toml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import modelmeter  # noqa: E402
from modelmeter.analysis.roofline import roofline  # noqa: E402
from modelmeter.frontends.torch.building import load_on_device, prepare  # noqa: E402
from modelmeter.frontends.torch.device import resolve_device  # noqa: E402
from modelmeter.frontends.torch.timing import time_model  # noqa: E402
from modelmeter.hardware import load_spec  # noqa: E402
from modelmeter.inputs import InputRequest  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--hardware", required=True)
    p.add_argument("--model", default="vit_b_16")
    p.add_argument("--batches", default="1,64")
    p.add_argument("--dtypes", default="float32,bfloat16")
    args = p.parse_args()
    dev = resolve_device(args.device)
    spec = load_spec(args.hardware)
    model = load_on_device(f"torchvision:{args.model}", dev).model
    print(f"{args.model} on {dev}, spec {spec.name}")
    print("dtype     batch  predicted  fused path  unfused path  pred/fused  pred/unfused")
    for dtype in args.dtypes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            request = InputRequest.from_api("1x3x224x224", batch=batch, dtype=dtype)
            prepared = prepare(model, request, dev)
            report = modelmeter.analyze(
                prepared.analysis_model, "1x3x224x224", batch=batch, dtype=dtype
            )
            predicted = roofline(report, spec, phase="forward").latency_s
            times = {}
            for fast in (True, False):
                torch.backends.mha.set_fastpath_enabled(fast)
                t = time_model(prepared.model, prepared.args, prepared.kwargs, dev,
                               warmup=3, repeats=10)
                times[fast] = sorted(t.samples)[len(t.samples) // 2]
            torch.backends.mha.set_fastpath_enabled(True)
            print(
                f"{dtype:9} {batch:5}  {predicted * 1e3:7.2f}ms  {times[True] * 1e3:8.2f}ms  "
                f"{times[False] * 1e3:10.2f}ms  {predicted / times[True]:9.2f}  "
                f"{predicted / times[False]:11.2f}"
            )
            del prepared
    return 0


if __name__ == "__main__":
    sys.exit(main())
