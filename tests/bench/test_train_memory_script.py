"""bench/train_memory.py: a real training step's peak RSS on the CPU against the prediction
(a small MLP here; docs/training.md records GPT-2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mlp_step_measured_near_the_prediction() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "train_memory.py"), "--mlp"],
                          capture_output=True, text=True, check=True, timeout=600)  # fmt: skip
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    # 1024 -> 4096 -> 1024 MLP: 1024*4096 + 4096 + 4096*1024 + 1024 = 8,393,728 parameters;
    # AdamW fp32 model states: 16 B each = 134,299,648
    assert d["params"] == 8_393_728
    assert d["model_states_bytes"] == 16 * 8_393_728
    # the resident peak also holds the allocator's overhead: within a loose band
    assert 0.9 < d["ratio"] < 1.5, d
