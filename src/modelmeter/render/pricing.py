"""How a roofline was priced, in one line: which figures (attainable, datasheet, ideal), where
they came from, and the runtime. Pure: a function of the Roofline."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline

RUNTIME_WORDS = {
    "eager": "eager (the host issues every op)",
    "graphs": "graphs (CUDA graphs / torch.compile: no per-op host time)",
    "ort": "ort (onnxruntime's per-op time)",
}


def figures_line(roof: Roofline) -> str:
    """E.g. 'attainable (measured: ...) · runtime eager (the host issues every op)'."""
    if roof.figures == "attainable":
        what = roof.figures_source  # already says "attainable (basis: source)"
    elif roof.figures == "ideal":
        what = "ideal: " + roof.figures_source
    else:
        what = "as the spec gives them (no [attainable] section)"
    return f"{what} · runtime {RUNTIME_WORDS.get(roof.runtime, roof.runtime)}"


__all__ = ["figures_line"]
