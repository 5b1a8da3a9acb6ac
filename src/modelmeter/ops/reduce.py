"""Reductions, scans and sorts.

A reduction of n elements to one costs n - 1 ops (adds, multiplies or compares); over a whole
tensor that is ``in.numel - out.numel`` (n = in.numel / out.numel per output). 0 MACs.
"""

from __future__ import annotations

import math

from modelmeter.registry import OpCall, TensorMeta, Work, per_output, register_op


def _sizes(call: OpCall) -> tuple[int, int, int]:
    """(input elements, output elements, n reduced into each output)."""
    x, out = call.inputs[0].numel, call.out.numel
    n = x // out if out else 0
    return x, out, n


def _reduced(call: OpCall, ops_per_input: int, ops_per_output: int) -> Work:
    """FLOPs of a reduction costing ``ops_per_input*n + ops_per_output`` per output."""
    x, out, n = _sizes(call)
    if not x or not out:
        return Work()
    return Work(flops=max(0, out * (ops_per_input * n + ops_per_output)))


def _scan(call: OpCall) -> tuple[int, int]:
    """(rows, n) of a scan or sort along ``dim`` (default last)."""
    x = call.inputs[0]
    if x.ndim == 0:
        return 1, 1
    dim = call.arg("dim", call.arg("axis", -1))
    n = x.shape[int(dim) % x.ndim]
    return (x.numel // n if n else 0), n


def _log2ceil(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


@register_op("sum", aten=["sum", "nansum"], onnx=["ReduceSum"])
def sum_(call: OpCall) -> Work:
    """sum of n elements: n - 1 adds per output (in total ``in.numel - out.numel``).
    nansum first replaces NaNs by 0: + n selects: 2n - 1 per output."""
    if call.op == "nansum":
        return _reduced(call, 2, -1)
    return _reduced(call, 1, -1)


@register_op("mean", aten=["mean"], onnx=["ReduceMean"])
def mean(call: OpCall) -> Work:
    """mean of n elements: n - 1 adds + 1 divide = n per output (in total ``in.numel``)."""
    return _reduced(call, 1, 0)


@register_op("prod", aten=["prod"], onnx=["ReduceProd"])
def prod(call: OpCall) -> Work:
    """product of n elements: n - 1 multiplies per output."""
    return _reduced(call, 1, -1)


@register_op("max_min", aten=["max", "min", "amax", "amin"], onnx=["ReduceMax", "ReduceMin"])
def max_min(call: OpCall) -> Work:
    """max/min/amax/amin of n elements (all, or along dims; max.dim also returns indices):
    n - 1 compares per output. The binary overload max(a, b) is elementwise: 1 compare per
    output element."""
    if isinstance(call.args.get("other"), TensorMeta):
        return per_output(call, 1)
    return _reduced(call, 1, -1)


@register_op("aminmax", aten=["aminmax"])
def aminmax(call: OpCall) -> Work:
    """aminmax: a max and a min of n elements: 2(n - 1) compares per output position."""
    return _reduced(call, 2, -2)


@register_op("argmax", aten=["argmax", "argmin"], onnx=["ArgMax", "ArgMin"])
def argmax(call: OpCall) -> Work:
    """argmax/argmin of n elements: n - 1 compares per output."""
    return _reduced(call, 1, -1)


@register_op("any_all", aten=["any", "all"])
def any_all(call: OpCall) -> Work:
    """any/all of n elements: n - 1 logical or/and per output."""
    return _reduced(call, 1, -1)


@register_op("count_nonzero", aten=["count_nonzero"])
def count_nonzero(call: OpCall) -> Work:
    """count_nonzero of n elements: n compares with 0 + n - 1 adds = 2n - 1 per output."""
    return _reduced(call, 2, -1)


@register_op("var_std", aten=["var", "std", "var_mean", "std_mean"])
def var_std(call: OpCall) -> Work:
    """var of n elements: mean (n - 1 adds + 1 divide), subtract the mean (n), square (n),
    sum (n - 1), divide by n - correction (1) = 4n per output. std adds a sqrt: 4n + 1.
    var_mean/std_mean return the mean they computed anyway: same counts."""
    return _reduced(call, 4, 1 if call.op.startswith("std") else 0)


def _order(call: OpCall) -> float:
    if call.op in ("ReduceL1", "ReduceL2"):
        return 1.0 if call.op == "ReduceL1" else 2.0
    p = call.args.get("ord", call.args.get("p"))
    return 2.0 if p is None else float(p)


@register_op("vector_norm", aten=["linalg_vector_norm", "norm"], onnx=["ReduceL1", "ReduceL2"])
def vector_norm(call: OpCall) -> Work:
    """p-norm of n elements, per output: p = 2: square (n), sum (n - 1), sqrt (1) = 2n;
    p = 1: abs (n), sum (n - 1) = 2n - 1; p = inf/-inf: abs (n), max (n - 1) = 2n - 1;
    p = 0 (count of nonzeros): compare (n), sum (n - 1) = 2n - 1; any other p:
    abs (n), pow (n), sum (n - 1), pow 1/p (1) = 3n."""
    p = _order(call)
    if p == 2:
        return _reduced(call, 2, 0)
    if p in (1, 0) or math.isinf(p):
        return _reduced(call, 2, -1)
    return _reduced(call, 3, 0)


@register_op("logsumexp", aten=["logsumexp"], onnx=["ReduceLogSumExp"])
def logsumexp(call: OpCall) -> Work:
    """log(sum(exp(x))) of n elements, stabilised: max (n - 1), subtract (n), exp (n),
    sum (n - 1), log (1), add the max back (1) = 4n per output."""
    return _reduced(call, 4, 0)


@register_op("cumsum", aten=["cumsum", "cumsum_", "cumprod", "cumprod_", "cummax", "cummin"],
             onnx=["CumSum"])
def cumsum(call: OpCall) -> Work:
    """Scans along a row of n: cumsum/cumprod n - 1 adds/multiplies, cummax/cummin n - 1
    compares per row (a sequential scan; each output reuses the previous one)."""
    rows, n = _scan(call)
    return Work(flops=rows * max(0, n - 1))


@register_op("logcumsumexp", aten=["logcumsumexp"])
def logcumsumexp(call: OpCall) -> Work:
    """log(cumsum(exp(x))) along a row of n: exp (n), scan (n - 1), log (n) = 3n - 1 per
    row."""
    rows, n = _scan(call)
    return Work(flops=rows * (3 * n - 1) if n else 0)


@register_op("sort", aten=["sort", "argsort", "msort", "median", "nanmedian", "kthvalue"])
def sort(call: OpCall) -> Work:
    """A comparison sort of a row of n: n*ceil(log2 n) compares per row (the order of any
    comparison sort). argsort alike. median/nanmedian/kthvalue are counted as sorting the row
    (an upper bound of a selection). median() without a dim sorts the whole tensor."""
    if call.op in ("median", "nanmedian") and call.args.get("dim") is None:
        n = call.inputs[0].numel
        return Work(flops=n * _log2ceil(n))
    rows, n = _scan(call)
    return Work(flops=rows * n * _log2ceil(n))


@register_op("topk", aten=["topk"], onnx=["TopK"])
def topk(call: OpCall) -> Work:
    """topk(k) of a row of n with a bounded heap of k: each of the n elements costs
    ceil(log2(k + 1)) compares (the heap's depth) = n*ceil(log2(k + 1)) per row; k = 1 gives
    n, about a max's n - 1."""
    rows, n = _scan(call)
    k = call.args.get("k")
    if not isinstance(k, int):  # ONNX: k is an input tensor; the output holds k per row
        k = call.out.shape[int(call.arg("axis", -1)) % call.out.ndim] if call.out.ndim else 1
    return Work(flops=rows * n * _log2ceil(k + 1))
