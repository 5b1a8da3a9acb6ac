"""torchvision models by name, built without weights.

Classification, segmentation, video and optical-flow models are built on the meta device.
Detection models need real data (NMS, data-dependent shapes), so they are built on the CPU
with torchvision's default initialisation under a fixed seed: finite values, the same every
time; the torch frontend's *auto* mode then runs them on real CPU tensors.

A few classification builders differ from the architecture of torchvision's published
(``DEFAULT``) weights when called without them; the loader builds the published architecture
so that the model's parameters and cost match torchvision's ``num_params`` and ``_ops``:
GoogLeNet's weights drop the auxiliary classifiers, ViT-H/14's are at 518 px, and the
DeepLabV3 and FCN segmentation weights carry the auxiliary classifier (which runs in eval too).
Detection models are built as torchvision builds them without weights (BatchNorm where the
pretrained backbones use FrozenBatchNorm, so their parameter counts differ slightly).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

from modelmeter.errors import ModelNotFound, require
from modelmeter.models.building import build_meta, build_seeded
from modelmeter.models.loaded import LoadedModel, suggest

# Builder arguments that give the architecture of the DEFAULT weights.
_CLASSIFICATION_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "init_weights": False},
    "vit_h_14": {"image_size": 518},
}
_AUX_SEGMENTATION = ("deeplabv3_", "fcn_")

# Image size for detection models: the size their transform resizes to anyway.
_DETECTION_SIZES = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": 320,
    "ssdlite320_mobilenet_v3_large": 320,
    "ssd300_vgg16": 300,
}


def _tv() -> Any:
    return require("torchvision", "torch", "torchvision models")


@lru_cache(maxsize=1)
def _categories() -> dict[str, str]:
    """Model name -> category (classification, detection, segmentation, video, ...)."""
    tv = _tv()
    m = tv.models
    out: dict[str, str] = {}
    for category, module in (
        ("classification", m),
        ("quantization", getattr(m, "quantization", None)),
        ("detection", getattr(m, "detection", None)),
        ("segmentation", getattr(m, "segmentation", None)),
        ("video", getattr(m, "video", None)),
        ("optical_flow", getattr(m, "optical_flow", None)),
    ):
        if module is None:
            continue
        for name in m.list_models(module=module):
            out.setdefault(name, category)
    for name in m.list_models():
        out.setdefault(name, "classification")
    return out


def torchvision_names() -> list[str]:
    """Every model name torchvision registers."""
    return sorted(_categories())


def find_torchvision(name: str, names: list[str] | None = None) -> str | None:
    """The registered name matching ``name`` (case-insensitive), or None."""
    lowered = {n.lower(): n for n in (names if names is not None else torchvision_names())}
    return lowered.get(name.strip().lower())


def category(name: str) -> str:
    return _categories()[name]


def default_input_size(name: str) -> int:
    """The crop size of the model's DEFAULT weights (where torchvision measured ``_ops``)."""
    tv = _tv()
    try:
        weights = tv.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError, KeyError):
        return 224
    size = getattr(weights.transforms, "keywords", {}).get("crop_size")
    if isinstance(size, (list, tuple)):
        size = size[0]
    return int(size) if size else 224


def load_torchvision(spec: str) -> LoadedModel:
    tv = _tv()
    name = find_torchvision(spec)
    if name is None:
        raise ModelNotFound(
            f"unknown torchvision model {spec!r}{suggest(spec, torchvision_names())}"
        )
    kind = category(name)
    kwargs: dict[str, Any] = {"weights": None}
    inputs: Any
    if kind in ("detection", "segmentation"):
        kwargs["weights_backbone"] = None  # the default would download ImageNet weights
    if kind == "quantization":
        kwargs["quantize"] = False
    if kind == "segmentation" and name.startswith(_AUX_SEGMENTATION):
        kwargs["aux_loss"] = True
    kwargs.update(_CLASSIFICATION_KWARGS.get(name, {}))

    def builder() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tv.models.get_model(name, **kwargs)

    if kind == "detection":
        model = build_seeded(builder)
        size = _DETECTION_SIZES.get(name, 800)
        inputs = [[f"3x{size}x{size}"]]  # one argument: a list of one image
    else:
        model = build_meta(builder)
        if kind == "segmentation":
            inputs = "1x3x520x520"
        elif kind == "video":
            size = default_input_size(name)
            inputs = f"1x3x16x{size}x{size}"
        elif kind == "optical_flow":
            # two frames (sides divisible by 8); 512 px is where torchvision measured _ops
            inputs = ["1x3x512x512", "1x3x512x512"]
        else:
            size = default_input_size(name)
            inputs = f"1x3x{size}x{size}"
    model.eval()
    return LoadedModel(model=model, inputs=inputs, kwargs=None, label=f"torchvision:{name}")
