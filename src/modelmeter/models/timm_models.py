"""timm models by name (``timm:NAME``), built with ``pretrained=False`` on the meta device."""

from __future__ import annotations

import warnings
from typing import Any

from modelmeter.errors import ModelNotFound, require
from modelmeter.models.building import build_meta
from modelmeter.models.loaded import LoadedModel, suggest


def load_timm(name: str) -> LoadedModel:
    timm = require("timm", "timm", "timm: models")
    if not name or not timm.is_model(name):
        base = name.split(".", 1)[0]
        if not name or not timm.is_model(base):
            raise ModelNotFound(f"unknown timm model {name!r}{suggest(base, timm.list_models())}")

    def builder() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return timm.create_model(name, pretrained=False)

    model = build_meta(builder)
    model.eval()
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = tuple(cfg.get("input_size") or (3, 224, 224))
    return LoadedModel(
        model=model,
        inputs="x".join(map(str, (1, *size))),
        kwargs=None,
        label=f"timm:{name}",
    )
