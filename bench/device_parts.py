"""What the device check's parts share (bench/device_check.py, gpu_generation.py,
gpu_training.py): the checkout's ``src/`` on ``sys.path``, model configs written as files (a
model is named ``hf:PATH`` so the measured model and the predicted one are built by the same
loader), results written atomically, the device's memory peak, time left, a part's command
line and its loop over the cases."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
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


def part_args(description: str, argv: list[str] | None) -> tuple[Any, Path, Any, float]:
    """A part's command line (``SETUP RESULT [--device] [--deadline]``): the setup read, the
    result's path, the device resolved and the deadline (an hour from now by default)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("setup", type=Path)
    p.add_argument("result", type=Path)
    p.add_argument("--device", default="cuda")
    p.add_argument("--deadline", type=float, default=None, help="time.time() to stop by")
    args = p.parse_args(argv)
    from modelmeter.frontends.torch.device import resolve_device

    setup_ = read_json(args.setup)
    deadline = args.deadline or time.time() + 3600
    return setup_, args.result, resolve_device(args.device), deadline


def run_cases(doc: dict[str, Any], cases: Iterable[tuple[str, Callable[[], dict[str, Any]]]],
              result: Path, dev: Any, deadline: float) -> dict[str, Any]:  # fmt: skip
    """Each ``(label, measure)`` case in turn into ``doc["cases"]``, the results rewritten
    after each (``running`` names the case in flight, so a run cut short says what it was
    doing); a case failing (e.g. out of memory) is noted in ``errors`` and the others go on;
    the cases left when the deadline is near are noted in ``skipped``."""
    for label, measure_one in cases:
        if left(deadline) < 5:
            doc["skipped"].append(f"{label}: the part's time was up")
            continue
        doc["running"] = label
        write_json(result, doc)
        try:
            doc["cases"].append(measure_one())
        except Exception as e:  # noqa: BLE001 - one case failing must not stop the others
            doc["errors"].append(f"{label}: {error_text(e)}")
        doc.pop("running", None)
        free(dev)
        write_json(result, doc)
    return doc
