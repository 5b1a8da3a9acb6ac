"""The first analysis in a fresh process reports what every later one does.

PyTorch imports ``torch._dynamo`` the first time a dispatch mode runs; done inside the
traced forward with the garbage collector paused, the cycles that import left kept the
forward's frames, so a tensor it had dropped, alive until the trace ended (the first call
reported 40320 bytes, later ones 31104). Only a fresh interpreter shows it: any earlier
analysis, or ``import torchvision``, has done the import already, so the analyses run in a
subprocess (``python -c``) that imports nothing but torch and modelmeter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import modelmeter

_SRC = str(Path(modelmeter.__file__).resolve().parents[1])

# The TinyCNN of test_threads.py (training mode, as there), analysed twice in one process.
_SCRIPT = """
import json, sys
import torch
from torch import nn
import modelmeter

class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        return self.head(x.mean((2, 3)))

mlp = nn.Sequential(nn.Linear(20, 32), nn.GELU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
model, shape = (TinyCNN(), "2x3x12x12") if sys.argv[1] == "cnn" else (mlp, "3x20")
print(json.dumps({
    "dynamo_before": "torch._dynamo" in sys.modules,
    "peaks": [modelmeter.analyze(model, shape, mode=sys.argv[2]).to_dict()["total"]
              ["peak_activation_bytes"] for _ in range(2)],
}))
"""


def _fresh(model: str, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SRC, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, model, mode],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_analysis_in_a_fresh_process_gives_the_true_peak() -> None:
    # float32, batch 2, 12x12 maps: the input x is 2*3*12*12*4 = 3456 bytes, each 8-channel
    # map 2*8*12*12*4 = 9216. The caller holds x all along; stem: conv -> c1 (x + c1), batch
    # norm -> b (x + c1 + b + its 8-float mean and inverse std, 2*32 = 21952), c1 dropped when
    # Sequential rebinds its input, ReLU -> r1 (x + b + r1 = 21888), b dropped. layer1 holds
    # its argument r1 until it returns: conv -> c2, ReLU -> r2: x + r1 + c2 + r2 =
    # 3456 + 3*9216 = 31104, the peak (the mean's 64 and the head's 40 bytes come after c2
    # and r1 are dropped). The first call used to keep c1 too: 31104 + 9216 = 40320.
    seen = _fresh("cnn", "meta")
    assert not seen["dynamo_before"]  # a fresh process: the first use still to come
    assert seen["peaks"] == [31104, 31104]


def test_first_real_run_of_an_mlp_gives_the_true_peak() -> None:
    # x 3*20*4 = 240 bytes, each hidden row block 3*32*4 = 384: the caller holds x, and
    # Sequential holds one layer's input while the next writes its output, so the peak is
    # x + h + act(h) = 240 + 384 + 384 = 1008 (the first call used to report 1008 + 384).
    assert _fresh("mlp", "real")["peaks"] == [1008, 1008]
