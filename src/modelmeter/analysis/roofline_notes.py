"""The notes and figure labels a roofline analysis carries (:mod:`modelmeter.analysis.roofline`):
which figures priced the ops, what the runtime leaves out, and what holds for the whole model
(quantised bytes, weights that do not fit, unverified or estimated figures)."""

from __future__ import annotations

from modelmeter.analysis.memory import WeightsFit
from modelmeter.hardware.spec import HardwareSpec


def figures_of(spec: HardwareSpec, ideal: bool) -> tuple[str, str]:
    """Which figures priced the ops, and where they came from."""
    if ideal:
        return "ideal", "datasheet peaks, efficiency 1.0 (--ideal)"
    if spec.attainable is not None:
        return "attainable", spec.attainable.label()
    return "datasheet", spec.source


def runtime_notes(notes: dict[str, None], spec: HardwareSpec, runtime: str) -> None:
    if runtime == "ort" and "ort" not in spec.runtime_overhead:
        notes["no onnxruntime per-op figure for this chip: eager's per-op overhead used"] = None
    if runtime == "graphs" and "graphs" not in spec.runtime_overhead:
        notes["graphs runtime: no per-op host time (one replay issues every kernel)"
              if spec.launches_overlap else
              f"graphs runtime on a {spec.kind} (launches do not overlap execution): no per-op "
              "host time, which removes the framework's per-op cost only as a compiled runtime "
              "would; nothing replays the kernels"] = None
    if runtime == "graphs" and not spec.launches_overlap and not spec.launch_s \
            and not spec.launch_classes:
        notes["the spec has no launch figure ([overhead] launch): an op costs its roofline "
              "time alone"] = None


def closing_notes(
    notes: dict[str, None], dtype: str, spec: HardwareSpec, fit: WeightsFit
) -> list[str]:
    """The notes so far, then what holds for the whole model: bytes of a quantised model,
    weights that do not fit the chip's memory, unverified figures."""
    if any(n.startswith("assumed quantised") for n in notes):
        notes[
            f"bytes are counted in the model's own dtypes ({dtype} here); a quantised "
            "deployment moves fewer"
        ] = None
    if fit.note():
        notes[str(fit.note())] = None
    if not spec.verified:
        notes["unverified figures: the hardware spec is not marked verified"] = None
    if spec.attainable is not None and spec.attainable.basis == "estimated":
        text = "attainable figures estimated, not measured on this chip"
        notes[text + (f" (uncertainty {spec.attainable.uncertainty})"
                      if spec.attainable.uncertainty else "")] = None
    return list(notes)


__all__ = ["closing_notes", "figures_of", "runtime_notes"]
