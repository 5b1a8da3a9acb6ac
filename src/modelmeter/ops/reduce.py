"""Reductions, scans and sorts.

A reduction of n elements to one costs n - 1 ops (adds, multiplies or compares); over a whole
tensor that is ``in.numel - out.numel`` (n = in.numel / out.numel per output). 0 MACs.
On complex tensors sum, mean and cumsum count 2 real adds per complex add (and 2 divides per
complex mean); the other reductions count as on real tensors.
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


def _complex_factor(call: OpCall) -> int:
    """2 when the reduced tensor is complex (a complex add is 2 real adds), else 1."""
    return 2 if call.inputs and call.inputs[0].dtype.startswith("complex") else 1


def _scan(call: OpCall, default_dim: int = -1) -> tuple[int, int]:
    """(rows, n) of a scan or sort along ``dim`` (default: ``default_dim``)."""
    x = call.inputs[0]
    if x.ndim == 0:
        return 1, 1
    dim = call.arg("dim", call.arg("axis", default_dim))
    n = x.shape[int(dim) % x.ndim]
    return (x.numel // n if n else 0), n


def _log2ceil(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


@register_op("sum", family="reduce", aten=["sum", "nansum"], onnx=["ReduceSum"])
def sum_(call: OpCall) -> Work:
    """sum of n elements: n - 1 adds per output (in total ``in.numel - out.numel``).
    nansum first replaces NaNs by 0: + n selects: 2n - 1 per output. Complex: 2(n - 1)."""
    if call.op == "nansum":
        return _reduced(call, 2, -1)
    c = _complex_factor(call)
    return _reduced(call, c, -c)


@register_op("mean", family="reduce", aten=["mean"], onnx=["ReduceMean"])
def mean(call: OpCall) -> Work:
    """mean of n elements: n - 1 adds + 1 divide = n per output (in total ``in.numel``).
    Complex: 2n."""
    c = _complex_factor(call)
    return _reduced(call, c, 0)


@register_op("prod", family="reduce", aten=["prod"], onnx=["ReduceProd"])
def prod(call: OpCall) -> Work:
    """product of n elements: n - 1 multiplies per output."""
    return _reduced(call, 1, -1)


@register_op(
    "max_min", family="reduce", aten=["max", "min", "amax", "amin"], onnx=["ReduceMax", "ReduceMin"]
)
def max_min(call: OpCall) -> Work:
    """max/min/amax/amin of n elements (all, or along dims; max.dim also returns indices):
    n - 1 compares per output. The binary overload max(a, b) is elementwise: 1 compare per
    output element."""
    if isinstance(call.args.get("other"), TensorMeta):
        return per_output(call, 1)
    return _reduced(call, 1, -1)


@register_op("aminmax", family="reduce", aten=["aminmax"])
def aminmax(call: OpCall) -> Work:
    """aminmax: a max and a min of n elements: 2(n - 1) compares per output position."""
    return _reduced(call, 2, -2)


@register_op("argmax", family="reduce", aten=["argmax", "argmin"], onnx=["ArgMax", "ArgMin"])
def argmax(call: OpCall) -> Work:
    """argmax/argmin of n elements: n - 1 compares per output."""
    return _reduced(call, 1, -1)


@register_op("any_all", family="reduce", aten=["any", "all"])
def any_all(call: OpCall) -> Work:
    """any/all of n elements: n - 1 logical or/and per output."""
    return _reduced(call, 1, -1)


@register_op("count_nonzero", family="reduce", aten=["count_nonzero"])
def count_nonzero(call: OpCall) -> Work:
    """count_nonzero of n elements: n compares with 0 + n - 1 adds = 2n - 1 per output."""
    return _reduced(call, 2, -1)


@register_op("var_std", family="reduce", aten=["var", "std", "var_mean", "std_mean"])
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


@register_op(
    "vector_norm",
    family="reduce",
    aten=["linalg_vector_norm", "norm"],
    onnx=["ReduceL1", "ReduceL2"],
)
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


@register_op("logsumexp", family="reduce", aten=["logsumexp"], onnx=["ReduceLogSumExp"])
def logsumexp(call: OpCall) -> Work:
    """log(sum(exp(x))) of n elements, stabilised: max (n - 1), subtract (n), exp (n),
    sum (n - 1), log (1), add the max back (1) = 4n per output."""
    return _reduced(call, 4, 0)


@register_op(
    "cumsum",
    family="reduce",
    aten=["cumsum", "cumsum_", "cumprod", "cumprod_", "cummax", "cummin"],
    onnx=["CumSum"],
)
def cumsum(call: OpCall) -> Work:
    """Scans along a row of n: cumsum/cumprod n - 1 adds/multiplies, cummax/cummin n - 1
    compares per row (a sequential scan; each output reuses the previous one). Complex cumsum:
    2(n - 1), complex cumprod: 6(n - 1)."""
    rows, n = _scan(call)
    c = _complex_factor(call)
    if c == 2 and call.op.startswith("cumprod"):
        c = 6
    return Work(flops=rows * max(0, n - 1) * c)


@register_op("logcumsumexp", family="reduce", aten=["logcumsumexp"])
def logcumsumexp(call: OpCall) -> Work:
    """log(cumsum(exp(x))) along a row of n: exp (n), scan (n - 1), log (n) = 3n - 1 per
    row."""
    rows, n = _scan(call)
    return Work(flops=rows * (3 * n - 1) if n else 0)


@register_op(
    "sort",
    family="reduce",
    aten=["sort", "argsort", "msort", "median", "nanmedian", "kthvalue", "mode"],
)
def sort(call: OpCall) -> Work:
    """A comparison sort of a row of n: n*ceil(log2 n) compares per row (the order of any
    comparison sort). argsort alike; msort sorts along dim 0. median/nanmedian/kthvalue are
    counted as sorting the row (an upper bound of a selection). median() without a dim sorts
    the whole tensor. mode sorts the row and counts runs of equal values: + n - 1 compares."""
    if call.op in ("median", "nanmedian") and call.args.get("dim") is None:
        n = call.inputs[0].numel
        return Work(flops=n * _log2ceil(n))
    rows, n = _scan(call, 0 if call.op == "msort" else -1)
    runs = max(0, n - 1) if call.op == "mode" else 0
    return Work(flops=rows * (n * _log2ceil(n) + runs))


@register_op("topk", family="reduce", aten=["topk"], onnx=["TopK"])
def topk(call: OpCall) -> Work:
    """topk(k) of a row of n with a bounded heap of k: each of the n elements costs
    ceil(log2(k + 1)) compares (the heap's depth) = n*ceil(log2(k + 1)) per row; k = 1 gives
    n, about a max's n - 1."""
    rows, n = _scan(call)
    k = call.args.get("k")
    if not isinstance(k, int):  # ONNX: k is an input tensor; the output holds k per row
        k = call.out.shape[int(call.arg("axis", -1)) % call.out.ndim] if call.out.ndim else 1
    return Work(flops=rows * n * _log2ceil(k + 1))


@register_op("searchsorted", family="reduce", aten=["searchsorted", "bucketize"])
def searchsorted(call: OpCall) -> Work:
    """searchsorted(sorted, values) / bucketize(values, boundaries): a binary search of each
    value in a sorted row of n boundaries: ceil(log2(n + 1)) compares per value (the depth of
    the search over n + 1 insertion points). FLOPs = values * ceil(log2(n + 1)). Reads the
    values and the boundaries, writes the int64 (or int32) positions."""
    if call.op == "bucketize":
        bounds = call.args.get("boundaries")
    else:
        bounds = call.args.get("sorted_sequence")
    if not isinstance(bounds, TensorMeta):
        bounds = call.inputs[-1] if call.op == "bucketize" else call.inputs[0]
    n = bounds.shape[-1] if bounds.ndim else 1
    return Work(flops=call.out.numel * _log2ceil(n + 1))


@register_op("histc", family="reduce", aten=["histc"])
def histc(call: OpCall) -> Work:
    """histc(x, bins, min, max) of n elements: per element 2 range compares, the bin
    ``(x - min) * (bins / (max - min))`` (subtract, multiply, truncate = 3), a compare that
    puts x == max into the last bin, and the count's increment = 7 per element. With
    min == max (the default 0, 0) the range is first taken from the data: min and max,
    2(n - 1) compares. FLOPs = 7n [+ 2(n - 1)]."""
    n = call.inputs[0].numel
    lo, hi = call.arg("min", 0), call.arg("max", 0)
    flops = 7 * n + (2 * max(0, n - 1) if lo == hi else 0)
    return Work(flops=flops)


@register_op("cdist", family="reduce", aten=["_cdist_forward"])
def cdist(call: OpCall) -> Work:
    """torch.cdist computed directly (p != 2, or small inputs; the large p = 2 case runs as a
    matmul and is counted by its ops): x1 (..., P, M), x2 (..., R, M) -> (..., P, R). Per
    output, over M coordinates: p = 2: subtract (M), square (M), sum (M - 1), sqrt (1) = 3M;
    p = 1: subtract, abs, sum = 3M - 1; p = inf: subtract, abs, max = 3M - 1; p = 0 (count of
    differing coordinates): subtract, compare, sum = 3M - 1; any other p: subtract, abs, pow,
    sum, pow 1/p (1) = 4M. 0 MACs (a distance, not a sum of products)."""
    x1 = call.inputs[0]
    m = x1.shape[-1] if x1.ndim else 1
    p = float(call.arg("p", 2.0))
    if p == 2:
        per = 3 * m
    elif p in (0, 1) or math.isinf(p):
        per = 3 * m - 1
    else:
        per = 4 * m
    return Work(flops=call.out.numel * per if m else 0)


# Per CTC state and time step, as PyTorch's kernel computes
# log(exp(a1 - m) + exp(a2 - m) + exp(a3 - m)) + m + log_prob: the max m of up to three
# predecessors (2 compares) and its -inf test (1), 3 subtracts, 3 exps, 2 adds, a log, and
# 2 adds = 14.
CTC_STATE_FLOPS = 14
# The loss of a sequence: -logsumexp of the last two states: max 1, 2 subtracts, 2 exps,
# an add, a log, the max added back and the negation = 9.
CTC_FINAL_FLOPS = 9


@register_op("ctc_loss", family="reduce", aten=["_ctc_loss"])
def ctc_loss(call: OpCall) -> Work:
    """CTC loss forward (the alpha recursion) of log_probs (T, B, C) against targets of
    lengths L_b: each sequence has S_b = 2*L_b + 1 states (labels and blanks); every state of
    every step after the first costs 14 (``log(exp(a1 - m) + exp(a2 - m) + exp(a3 - m)) + m +
    log_prob`` over up to three predecessors: max 2 compares, its -inf test 1, 3 subtracts,
    3 exps, 2 adds, a log, 2 adds), the loss 9 (-logsumexp of the last two states: max 1,
    2 subtracts, 2 exps, add, log, add, negate): FLOPs = sum over b of (T_b - 1)*S_b*14 + 9.
    Lengths given
    as tensors (``_ctc_loss.Tensor``) are data: then every sequence is counted at the full T
    and the targets' padded length (an upper bound). Writes the loss and log_alpha."""
    log_probs = call.inputs[0]
    targets = call.args.get("targets")
    t_full = log_probs.shape[0] if log_probs.ndim else 0
    batch = log_probs.shape[1] if log_probs.ndim == 3 else 1
    in_len = call.args.get("input_lengths")
    tgt_len = call.args.get("target_lengths")
    if isinstance(in_len, (list, tuple)) and not isinstance(in_len, TensorMeta):
        steps = [int(t) for t in in_len]
    else:
        steps = [t_full] * batch
    if isinstance(tgt_len, (list, tuple)) and not isinstance(tgt_len, TensorMeta):
        labels = [int(n) for n in tgt_len]
    else:
        pad = targets.shape[-1] if isinstance(targets, TensorMeta) and targets.ndim else 0
        labels = [pad] * batch
    flops = sum(
        max(0, t - 1) * (2 * n + 1) * CTC_STATE_FLOPS + CTC_FINAL_FLOPS
        for t, n in zip(steps, labels)
    )
    return Work(flops=flops)
