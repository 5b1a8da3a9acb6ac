"""What the device check's parts share (bench/device_check.py, gpu_generation.py,
gpu_training.py): the checkout's ``src/`` on ``sys.path``, model configs written as files (a
model is named ``hf:PATH`` so the measured model and the predicted one are built by the same
loader), results written atomically, the device's memory peak, and time left."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))  # run from a checkout without installing
sys.path.insert(0, str(BENCH))


def config_source(config: dict[str, Any], folder: Path, name: str) -> str:
    """``config`` written to ``folder/name.json``, as a model name (``hf:PATH``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return f"hf:{path}"


def preset(name: str, **changes: Any) -> dict[str, Any]:
    """A shipped preset's config (``hf:NAME``) with ``changes``, its notes left out."""
    from modelmeter.models.hf import preset_config

    config = {k: v for k, v in preset_config(name).items() if not k.startswith("_")}
    return {**config, **changes}


def write_json(path: Path, doc: Any) -> None:
    """``doc`` as JSON at ``path``, replaced in one step (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (a ``time.time()``)."""
    return deadline - time.time()


def reset_peak(dev: Any) -> int:
    """Start counting the device's memory peak afresh; the bytes allocated now (CUDA; 0
    elsewhere)."""
    import torch

    if dev.type != "cuda":
        return 0
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    return int(torch.cuda.memory_allocated(dev))


def peak(dev: Any) -> int | None:
    """``torch.cuda.max_memory_allocated`` since :func:`reset_peak` (None off CUDA)."""
    import torch

    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    return int(torch.cuda.max_memory_allocated(dev))


def sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def free(dev: Any) -> None:
    import gc

    import torch

    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"


def versions() -> dict[str, str]:
    import torch

    out = {"torch": torch.__version__}
    try:
        import transformers

        out["transformers"] = transformers.__version__
    except ImportError:
        out["transformers"] = "absent"
    out["cuda"] = str(torch.version.cuda)
    return out


def ratio(pred: float | None, meas: float | None) -> float | None:
    return pred / meas if pred is not None and meas else None
