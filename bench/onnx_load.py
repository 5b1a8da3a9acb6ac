"""Analysing a large ONNX file vs merely loading it, side by side in one run (not a test).

It builds, in a temporary directory, an MLP of ``--layers`` Gemm layers of ``--width`` x
``--width`` float32 weights (8 x 4096^2 = 512 MiB by default) saved with external data, then
times, each in a fresh process (median of ``--repeats`` runs, the import of onnx excluded):

  load      onnx.load(path)  -- the graph and every weight byte, as most tools start
  analyse   modelmeter.analyze(path, batch)  -- reads the graph, never the weights' bytes

and prints both times, their ratio and each process's peak RSS.

    .venv/bin/python bench/onnx_load.py [--layers 8] [--width 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

_CHILD = r"""
import json, sys, time
import onnx
path, what = sys.argv[1], sys.argv[2]
if what == "analyse":
    import modelmeter
t = time.perf_counter()
if what == "load":
    m = onnx.load(path)
    n = sum(len(x.raw_data) for x in m.graph.initializer)
else:
    r = modelmeter.analyze(path, "1x%s" % sys.argv[3])
    n = r.total().params
seconds = time.perf_counter() - t
# peak RSS of this process image (VmHWM; ru_maxrss would include the parent's, kept over exec)
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "rss": rss, "n": n}))
"""


def build(folder: str, layers: int, width: int) -> tuple[str, int]:
    """An MLP saved as model.onnx + weights.bin; returns (path, weight bytes)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    for i in range(layers):
        w = numpy_helper.from_array(rng.random((width, width), dtype=np.float32), f"w{i}")
        b = numpy_helper.from_array(np.zeros(width, dtype=np.float32), f"b{i}")
        inits += [w, b]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"]))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"a{i}"]))
        x = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = os.path.join(folder, "model.onnx")
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=1024)
    return path, layers * width * (width + 1) * 4


def _child(path: str, what: str, width: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, path, what, str(width)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        path, nbytes = build(folder, a.layers, a.width)
        print(f"built {path}: {nbytes / 2**20:.0f} MiB of weights in "
              f"{time.perf_counter() - t:.1f} s (file in the page cache for both runs)")
        runs: dict[str, list[dict]] = {"load": [], "analyse": []}
        for _ in range(a.repeats):
            for what in runs:  # interleaved, so that both see the same cache state
                runs[what].append(_child(path, what, a.width))
        med = {w: statistics.median(r["seconds"] for r in rs) for w, rs in runs.items()}
        rss = {w: max(r["rss"] for r in rs) for w, rs in runs.items()}
        assert runs["analyse"][0]["n"] == nbytes // 4, "parameter count mismatch"
        print(f"{'':10s} {'seconds':>9s} {'peak RSS':>10s}")
        for w in runs:
            print(f"{w:10s} {med[w]:9.3f} {rss[w] / 2**20:8.0f} MB")
        print(f"analyse / load = {med['analyse'] / med['load']:.3f} "
              f"(load is {med['load'] / med['analyse']:.1f}x slower)")


if __name__ == "__main__":
    main()
