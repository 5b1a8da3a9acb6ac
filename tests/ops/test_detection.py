"""Detection ops: NMS, RoI Align, unique."""

from __future__ import annotations

import torch
import torchvision

import modelmeter
from modelmeter.registry import OpCall, TensorMeta, lookup


def _call(op: str, inputs: list[TensorMeta], outputs: list[TensorMeta], **args) -> OpCall:
    return OpCall(op, args, tuple(inputs), tuple(outputs))


def test_nms_formula() -> None:
    # N = 8 boxes, K = 3 kept: sort 8*ceil(log2 8) = 24, areas 3*8 = 24,
    # IoUs at most 3*8 - 3*4/2 = 18 pairs * 13 = 234 -> 282
    f = lookup("aten", "torchvision.nms")
    call = _call(
        "torchvision.nms",
        [TensorMeta((8, 4)), TensorMeta((8,))],
        [TensorMeta((3,), "int64")],
        iou_threshold=0.5,
    )
    assert f(call).flops == 24 + 24 + 18 * 13


def test_nms_through_the_tracer_uses_the_kept_count() -> None:
    # four boxes: two pairs of identical boxes far apart -> K = 2 kept of N = 4
    boxes = torch.tensor(
        [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 60, 60]], dtype=torch.float
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])

    def f(b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torchvision.ops.nms(b, s, 0.5)

    r = modelmeter.analyze(f, (boxes, scores), mode="real")
    assert r.unsupported == {}
    (key, stat), = r.by_operator().items()
    # sort 4*2 = 8, areas 12, pairs 2*4 - 2*3/2 = 5 -> 65 ; total 85
    assert key == "torchvision.nms" and stat.cost.flops == 8 + 12 + 5 * 13


def test_roi_align_formula_and_bytes() -> None:
    # 5 RoIs, 16 channels, 7x7 bins, sampling 2: 8*2*2 = 32 FLOPs per output;
    # outputs 5*16*49 = 3920 -> 125,440 FLOPs; reads 4*4 = 16 elements (4 B) per output
    # = 250,880 B plus the RoIs 5*5*4 = 100 B
    f = lookup("aten", "torchvision.roi_align")
    call = _call(
        "torchvision.roi_align",
        [TensorMeta((1, 16, 32, 32)), TensorMeta((5, 5))],
        [TensorMeta((5, 16, 7, 7))],
        spatial_scale=1.0,
        pooled_height=7,
        pooled_width=7,
        sampling_ratio=2,
        aligned=False,
    )
    w = f(call)
    assert w.flops == 32 * 3920
    assert w.bytes_read == 16 * 3920 * 4 + 100 and w.bytes_written == 3920 * 4
    # sampling_ratio 3: 8*9 = 72 per output
    call3 = OpCall(call.op, {**call.args, "sampling_ratio": 3}, call.inputs, call.outputs)
    assert f(call3).flops == 72 * 3920
    # a broadcast feature map (distinct elements 16*32*32 of 4*16*32*32) is still gathered
    # per output at 4 bytes an element: the same 250,880 B
    broadcast = TensorMeta((4, 16, 32, 32), distinct=16 * 32 * 32)
    callb = OpCall(call.op, call.args, (broadcast, call.inputs[1]), call.outputs)
    assert f(callb).bytes_read == 16 * 3920 * 4 + 100


def test_unique() -> None:
    # 10 elements: sort 10*4 = 40 + 9 neighbour compares = 49
    f = lookup("aten", "_unique2")
    assert f(_call("_unique2", [TensorMeta((10,))], [TensorMeta((4,))])).flops == 49
    assert lookup("aten", "unique_consecutive")(
        _call("unique_consecutive", [TensorMeta((10,))], [TensorMeta((4,))])
    ).flops == 9


# Found in review: unique: unique_dim sorts slices, not elements.


def test_unique_dim_sorts_slices(kit) -> None:  # noqa: ANN001
    r = kit.run(lambda x: torch.unique(x, dim=0), "8x3", mode="real")
    # 8 rows of 3: sort 8*ceil(log2 8) = 24 row compares + 7 neighbour compares = 31, each
    # over 3 elements -> 93 (elementwise unique of 24 values would be 24*5 + 23 = 143)
    assert r.by_operator()["aten.unique_dim"].cost.flops == 93
    # flat unique of the 24 values: 24*ceil(log2 24) = 120 + 23 = 143
    assert kit.run(torch.unique, "8x3", mode="real").total().cost.flops == 143
