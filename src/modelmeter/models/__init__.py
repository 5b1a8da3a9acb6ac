"""Models by name: ``torchvision:NAME``, ``timm:NAME``, ``hf:NAME_OR_CONFIG``,
``path/to/file.py:FACTORY`` and ``file.onnx``.

:func:`load` turns such a spec into a :class:`LoadedModel`: the model, default inputs the
model runs on, and the label shown in reports. Models are built without weights (no
download), on the meta device where they allow it.
"""

from __future__ import annotations

import difflib
import re

from modelmeter.errors import ModelmeterError, ModelNotFound
from modelmeter.models.loaded import LoadedModel, suggest

FORMS = "torchvision:NAME, timm:NAME, hf:NAME_OR_CONFIG, path/to/file.py:FACTORY or file.onnx"
_FILE_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<factory>[A-Za-z_][A-Za-z0-9_.]*)$")
_PREFIX = re.compile(r"^(?P<source>[A-Za-z][A-Za-z0-9_-]*):(?P<name>.*)$")


def load(spec: str) -> LoadedModel:
    """Build the model a spec names. Raises ModelNotFound, InputError or MissingDependency."""
    text = spec.strip()
    if not text:
        raise ModelNotFound(f"empty model name; use {FORMS}")
    if text.lower().endswith(".onnx"):  # never a PyTorch module: the ONNX frontend reads it
        raise ModelmeterError(
            f"{text!r} is an ONNX file, not a PyTorch model to load: analyse it directly, "
            f"modelmeter.analyze({text!r}) or `modelmeter analyze {text}`"
        )
    m = _FILE_SPEC.match(text)
    if m:
        from modelmeter.models.pyfile import load_file

        return load_file(m.group("path"), m.group("factory"))
    if text.lower().endswith(".py"):
        raise ModelNotFound(
            f"{text!r} names a Python file but no factory: write {text}:FACTORY, where FACTORY "
            "is a function in it returning a module (or a (module, inputs) pair)"
        )
    m = _PREFIX.match(text)
    if m:
        source, name = m.group("source").lower(), m.group("name").strip()
        if source == "torchvision":
            from modelmeter.models.tv import load_torchvision

            return load_torchvision(name)
        if source == "timm":
            from modelmeter.models.timm_models import load_timm

            return load_timm(name)
        if source in ("hf", "huggingface", "transformers"):
            from modelmeter.models.hf import load_hf

            return load_hf(name)
        raise ModelNotFound(f"unknown model source {m.group('source')!r} in {text!r}; use {FORMS}")
    return _load_bare(text)


def _load_bare(name: str) -> LoadedModel:
    """A name without a prefix: a torchvision model, else an hf preset, else a clear error."""
    from modelmeter.models.hf import preset_names
    from modelmeter.models.tv import find_torchvision, torchvision_names

    tv_names: list[str] = []
    try:
        tv_names = torchvision_names()
    except ModelmeterError:
        pass  # torchvision missing: presets may still match
    if tv_names and find_torchvision(name, tv_names) is not None:
        from modelmeter.models.tv import load_torchvision

        return load_torchvision(name)
    presets = preset_names()
    if name.lower() in presets:
        from modelmeter.models.hf import load_hf

        return load_hf(name.lower())
    pool = [f"torchvision:{n}" for n in tv_names] + [f"hf:{n}" for n in presets]
    bare = {p.split(":", 1)[1]: p for p in pool}
    close = [bare[n] for n in difflib.get_close_matches(name.lower(), list(bare), n=3)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelNotFound(
        f"unknown model {name!r}: not a torchvision model or an hf preset{hint} "
        f"(model forms: {FORMS})"
    )


__all__ = ["LoadedModel", "load", "suggest", "FORMS"]
