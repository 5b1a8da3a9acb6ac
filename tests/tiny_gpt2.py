"""A one-layer GPT-2 config written to a file, for the sweep tests."""

from __future__ import annotations

import json
from pathlib import Path

TINY = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64, "n_head": 2,
    "n_layer": 1, "n_positions": 4096, "vocab_size": 100,
}  # fmt: skip


def tiny_gpt2(folder: Path) -> str:
    """The config written into ``folder``, as a model name (``hf:PATH``)."""
    path = folder / "tiny-gpt2.json"
    path.write_text(json.dumps(TINY))
    return f"hf:{path}"
