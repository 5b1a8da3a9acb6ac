"""Detection ops: non-maximum suppression, RoI Align, and unique (sort-based).

Their cost depends on the data (how many boxes survive, how large each RoI is); the formulas
use what the shapes say and state the assumption in their docstrings.
"""

from __future__ import annotations

import math

from modelmeter.registry import OpCall, Work, register_op


def _log2ceil(n: int) -> int:
    return max(n - 1, 0).bit_length()


# IoU of two boxes given both areas: intersection corners 2 max + 2 min, width and height
# 2 subtracts + 2 clamps at 0, intersection area 1 multiply, union 2 adds/subtracts, 1 divide,
# 1 compare with the threshold = 13.
IOU_FLOPS = 13


@register_op("nms", family="detection", aten=["torchvision.nms"], onnx=["NonMaxSuppression"])
def nms(call: OpCall) -> Work:
    """Greedy NMS of N boxes keeping K (the output's length): sort the scores, N*ceil(log2 N)
    compares; box areas, 3 per box (2 subtracts, 1 multiply); then each kept box is compared
    with every box after it in score order, at most K*N - K*(K+1)/2 IoUs of 13 FLOPs
    (2 max, 2 min, 2 subtracts, 2 clamps, multiply, add, subtract, divide, compare). Boxes
    suppressed earlier are skipped by the kernel, so this is an upper bound given K."""
    n = call.inputs[0].shape[0] if call.inputs[0].ndim else 0
    k = call.out.numel if call.outputs else n
    if call.op == "NonMaxSuppression":  # ONNX: output is (selected, 3) index triples
        k = call.out.shape[0] if call.out.ndim else 0
        n = call.inputs[0].shape[-2] if call.inputs[0].ndim >= 2 else n
    pairs = max(k * n - k * (k + 1) // 2, 0)
    return Work(flops=n * _log2ceil(n) + 3 * n + IOU_FLOPS * pairs)


@register_op("roi_align", family="detection", aten=["torchvision.roi_align"], onnx=["RoiAlign"])
def roi_align(call: OpCall) -> Work:
    """RoI Align to (K, C, ph, pw) outputs, each the mean of s*s bilinear samples, s =
    ``sampling_ratio`` (when it is <= 0 the kernel picks s from each RoI's size, which shapes do
    not tell: counted as s = 2, torchvision's MultiScaleRoIAlign default). A bilinear sample
    from 4 neighbours costs 4 multiplies + 3 adds; the mean s*s - 1 adds + 1 divide:
    8*s*s FLOPs per output (32 for s = 2). Reads: 4*s*s input elements per output (gathered)
    plus the RoIs."""
    s = call.arg("sampling_ratio", 0)
    if not isinstance(s, int) or s <= 0:
        s = 2
    x, rois, out = call.inputs[0], call.inputs[1], call.out
    per_out = 8 * s * s
    return Work(
        flops=per_out * out.numel,
        bytes_read=rois.nbytes + math.ceil(4 * s * s * out.numel * x.itemsize),
        bytes_written=out.nbytes,
        weight_bytes=0,
    )


@register_op(
    "unique", family="detection", aten=["_unique2", "_unique", "unique_dim", "unique_consecutive"]
)
def unique(call: OpCall) -> Work:
    """unique of n elements by sorting: n*ceil(log2 n) compares, then n - 1 compares of
    neighbours (unique_consecutive: only the n - 1). unique_dim sorts the n slices along
    ``dim`` and compares slices of m = numel/n elements: n*ceil(log2 n)*m + (n - 1)*m (an
    upper bound: a lexicographic compare may stop at the first differing element)."""
    x = call.inputs[0]
    n, m = x.numel, 1
    if call.op == "unique_dim" and x.ndim:
        n = x.shape[int(call.arg("dim", 0)) % x.ndim]
        m = x.numel // n if n else 0
    sort = 0 if call.op == "unique_consecutive" else n * _log2ceil(n)
    return Work(flops=(sort + max(n - 1, 0)) * m)
