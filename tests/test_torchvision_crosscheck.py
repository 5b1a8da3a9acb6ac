"""Every torchvision classification model against independent counts.

For each model (built by ``modelmeter.models.load``: meta device, no weights) this checks:

- MACs == PyTorch ``FlopCounterMode`` total / 2, on the same meta model and input;
- the ``2mac`` FLOPs of the MAC ops (conv, linear, matmul, attention) == FlopCounterMode total;
- parameters == torchvision's published ``num_params`` of the model's DEFAULT weights;
- MACs == torchvision's published ``_ops`` (GMACs, 3 decimals), at the crop size of the DEFAULT
  weights' transforms (where torchvision measured it: 224 for most, 299 for Inception v3,
  384 for RegNetY-128GF, 518 for ViT-H/14, 240-600 for the EfficientNets ...);
- nothing is unsupported.

The published figures come with the weights enums; reading them downloads nothing. Each model
is analysed once (cached) and the result is reused by the checks.
Video, segmentation and optical-flow models are checked against their published figures too;
detection models (which need real data for NMS) must complete through the real-tensor fallback.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import pytest

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision")

from fcm_helpers import product_flops  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import modelmeter  # noqa: E402
from modelmeter.models import load  # noqa: E402

M = tv.models
CLASSIFICATION = M.list_models(module=M)
VIDEO = M.list_models(module=M.video)
SEGMENTATION = M.list_models(module=M.segmentation)
OPTICAL_FLOW = M.list_models(module=M.optical_flow)


@dataclass(frozen=True)
class Checked:
    default_inputs: object
    macs: int
    mac_op_flops_2mac: int
    fcm_flops: int
    params: int
    unsupported: dict
    mode: str


def _weights_meta(name: str) -> dict:
    return M.get_model_weights(name).DEFAULT.meta


def _crop_size(name: str) -> int:
    """The crop size of the DEFAULT weights' preprocessing (read independently of the loader)."""
    transforms = M.get_model_weights(name).DEFAULT.transforms
    size = transforms.keywords["crop_size"]
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def _meta_inputs(shapes: list[tuple[int, ...]]) -> list:
    return [torch.empty(s, device="meta") for s in shapes]


@cache
def checked(name: str, shapes: tuple[tuple[int, ...], ...]) -> Checked:
    """Analyse ``torchvision:name`` once (2mac convention) and count it with FlopCounterMode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load(f"torchvision:{name}")
    model = loaded.model
    report = modelmeter.analyze(model, ["x".join(map(str, s)) for s in shapes], convention="2mac")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*_meta_inputs(list(shapes)))
    mac_flops = product_flops(report)
    total = report.total()
    return Checked(
        default_inputs=loaded.inputs,
        macs=total.cost.macs,
        mac_op_flops_2mac=mac_flops,
        fcm_flops=counter.get_total_flops(),
        params=total.params,
        unsupported=report.unsupported,
        mode=report.mode,
    )


def _image(name: str) -> tuple[tuple[int, ...], ...]:
    s = _crop_size(name)
    return ((1, 3, s, s),)


def _published_gmacs_match(macs: int, published: float) -> bool:
    # published figures are GMACs rounded to 3 decimals
    return abs(macs / 1e9 - published) <= 0.0005 + 1e-9


# ---- classification: every model ------------------------------------------------------------


def test_all_classification_models_are_listed() -> None:
    assert len(CLASSIFICATION) >= 80  # torchvision 0.29 has 80; a drop means a broken listing
    assert {"resnet50", "vit_h_14", "regnet_y_128gf", "inception_v3"} <= set(CLASSIFICATION)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_macs_equal_flopcounter(name: str) -> None:
    c = checked(name, _image(name))
    assert c.fcm_flops > 0
    assert 2 * c.macs == c.fcm_flops
    assert c.mac_op_flops_2mac == c.fcm_flops


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_params_equal_published(name: str) -> None:
    assert checked(name, _image(name)).params == _weights_meta(name)["num_params"]


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_macs_equal_published_ops(name: str) -> None:
    c = checked(name, _image(name))
    published = _weights_meta(name)["_ops"]
    assert _published_gmacs_match(c.macs, published), (c.macs / 1e9, published)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_fully_supported_and_default_input(name: str) -> None:
    c = checked(name, _image(name))
    assert c.unsupported == {}
    assert c.mode == "meta"
    s = _crop_size(name)
    assert c.default_inputs == f"1x3x{s}x{s}"  # the loader defaults to the published size


# ---- video, segmentation, optical flow: published figures -----------------------------------


@pytest.mark.parametrize("name", VIDEO)
def test_video_models_match_published(name: str) -> None:
    s = _crop_size(name)
    c = checked(name, ((1, 3, 16, s, s),))  # torchvision measured clips of 16 frames
    meta = _weights_meta(name)
    assert c.params == meta["num_params"]
    assert _published_gmacs_match(c.macs, meta["_ops"]), (c.macs / 1e9, meta["_ops"])
    assert 2 * c.macs == c.fcm_flops


@pytest.mark.parametrize("name", SEGMENTATION)
def test_segmentation_models_match_published(name: str) -> None:
    # measured at 520x520 (the weights' resize size); the DeepLabV3/FCN weights include the
    # auxiliary classifier, which runs in eval mode too, so it is part of both figures
    c = checked(name, ((1, 3, 520, 520),))
    meta = _weights_meta(name)
    assert c.params == meta["num_params"]
    assert _published_gmacs_match(c.macs, meta["_ops"]), (c.macs / 1e9, meta["_ops"])
    assert 2 * c.macs == c.fcm_flops
    assert c.default_inputs == "1x3x520x520"


@pytest.mark.parametrize("name", ["deeplabv3_mobilenet_v3_large", "fcn_resnet50"])
def test_segmentation_small_input(name: str) -> None:
    c = checked(name, ((1, 3, 128, 128),))
    assert c.mode == "meta"
    assert 2 * c.macs == c.fcm_flops > 0
    big = checked(name, ((1, 3, 520, 520),))
    # fully convolutional: cost grows with the pixel count (520/128)^2 ~ 16.5x, up to the
    # bilinear upsampling and global pooling (no MACs) and border effects
    assert 12 < big.macs / c.macs < 18


@pytest.mark.parametrize("name", OPTICAL_FLOW)
def test_optical_flow_models_match_published(name: str) -> None:
    # RAFT's published _ops reproduce exactly at two 512x512 frames (12 flow updates)
    c = checked(name, ((1, 3, 512, 512), (1, 3, 512, 512)))
    meta = _weights_meta(name)
    assert c.params == meta["num_params"]
    assert _published_gmacs_match(c.macs, meta["_ops"]), (c.macs / 1e9, meta["_ops"])
    assert 2 * c.macs == c.fcm_flops


# ---- detection: needs real data, completes through the fallback -----------------------------


def _backbone_macs(model: torch.nn.Module, size: int) -> int:
    """MACs of the detection model's backbone alone on the resized image (a lower bound)."""
    return modelmeter.analyze(model.backbone, f"1x3x{size}x{size}").total().cost.macs


def test_fasterrcnn_mobilenet_runs_real_via_fallback() -> None:
    loaded = load("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn")
    model = loaded.model
    assert loaded.inputs == [["3x320x320"]]  # one argument: a list of one image
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = modelmeter.analyze(model, loaded.inputs)
    assert report.mode == "real"
    assert any("meta-device run failed" in n for n in report.notes)
    assert [i.shape for i in report.inputs] == [(3, 320, 320)]
    macs = report.total().cost.macs
    # the whole detector costs more than its backbone (plus RPN and box heads) ...
    assert macs > _backbone_macs(model, 320) > 100_000_000
    # ... and stays within reason: 19.4M parameters on a 320x320 image
    assert macs < 20e9
    # the meta attempt did not leave meta tensors behind (AnchorGenerator caches anchors)
    assert all(a.device.type == "cpu" for a in model.rpn.anchor_generator.cell_anchors)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # lazily set state (MultiScaleRoIAlign's scales) is put back as it was
    assert model.roi_heads.box_roi_pool.scales is None
    # NMS and RoI Align are counted, nothing is left out, and the seeded random inputs make
    # the data-dependent parts (proposals kept) the same on every run
    assert report.unsupported == {}
    assert {"torchvision.nms", "torchvision.roi_align"} <= set(report.by_operator())
    assert modelmeter.analyze(model, loaded.inputs).total() == report.total()
    # and the model still runs on its own
    with torch.no_grad():
        model([torch.rand(3, 320, 320)])


def test_retinanet_small_input_runs_real() -> None:
    model = load("torchvision:retinanet_resnet50_fpn").model
    model.transform.min_size, model.transform.max_size = (256,), 256  # keep the test fast
    report = modelmeter.analyze(model, [["3x256x256"]])
    assert report.mode == "real"
    assert report.total().params == sum(p.numel() for p in model.parameters())
    assert report.total().cost.macs > _backbone_macs(model, 256) > 1_000_000_000
    assert "aten.convolution" in report.by_operator()
    assert report.unsupported == {}  # nms, unique (batched NMS) included
