"""Matrix products: mm, addmm (linear), bmm, baddbmm, addbmm, mv, addmv, dot.

``matmul`` and ``linear`` are composite in PyTorch and reach the tracer as these ops.
"""

from modelmeter.registry import OpCall, Work, mac_work, register_op


def _scaled(call: OpCall, work: Work, outputs: int, has_bias: bool) -> Work:
    """Extra multiplies of ``beta*self + alpha*(a@b)`` when alpha/beta are not 1 (exact only)."""
    if call.convention == "2mac":
        return work
    extra = 0
    if call.arg("alpha", 1) != 1:
        extra += outputs
    if has_bias and call.arg("beta", 1) != 1:
        extra += outputs
    return Work(macs=work.macs, flops=work.flops + extra)


@register_op("mm", aten=["mm", "_scaled_mm"])
def mm(call: OpCall) -> Work:
    """(m,k) @ (k,n): MACs = m*k*n; exact FLOPs = (2k-1)*m*n, 2mac FLOPs = 2*m*k*n."""
    (m, k), n = call.inputs[0].shape, call.inputs[1].shape[-1]
    return mac_work(call, m * k * n, m * n, bias=False)


@register_op("addmm", aten=["addmm"], onnx=["Gemm"])
def addmm(call: OpCall) -> Work:
    """bias + (m,k) @ (k,n), i.e. a linear layer: MACs = m*k*n; exact FLOPs = 2k*m*n (the bias
    add takes the place of the missing add; the seed's FC formula 2I*O per row)."""
    m, k = call.args["mat1"].shape
    n = call.args["mat2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, mac_work(call, m * k * n, m * n, bias=has_bias), m * n, has_bias)


@register_op("bmm", aten=["bmm"])
def bmm(call: OpCall) -> Work:
    """(b,m,k) @ (b,k,n): MACs = b*m*k*n; exact FLOPs = (2k-1)*b*m*n."""
    b, m, k = call.inputs[0].shape
    n = call.inputs[1].shape[-1]
    return mac_work(call, b * m * k * n, b * m * n, bias=False)


@register_op("baddbmm", aten=["baddbmm"])
def baddbmm(call: OpCall) -> Work:
    """bias + (b,m,k) @ (b,k,n): MACs = b*m*k*n; exact FLOPs = 2k*b*m*n (+ alpha/beta scaling)."""
    b, m, k = call.args["batch1"].shape
    n = call.args["batch2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(
        call, mac_work(call, b * m * k * n, b * m * n, bias=has_bias), b * m * n, has_bias
    )


@register_op("addbmm", aten=["addbmm"])
def addbmm(call: OpCall) -> Work:
    """bias + sum_b (b,m,k) @ (b,k,n) -> (m,n): MACs = b*m*k*n; each output sums b*k products,
    so exact FLOPs = (2*b*k-1)*m*n without bias, 2*b*k*m*n with it."""
    b, m, k = call.args["batch1"].shape
    n = call.args["batch2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, mac_work(call, b * m * k * n, m * n, bias=has_bias), m * n, has_bias)


@register_op("mv", aten=["mv"])
def mv(call: OpCall) -> Work:
    """(m,k) @ (k,): MACs = m*k; exact FLOPs = (2k-1)*m."""
    m, k = call.inputs[0].shape
    return mac_work(call, m * k, m, bias=False)


@register_op("addmv", aten=["addmv"])
def addmv(call: OpCall) -> Work:
    """bias + (m,k) @ (k,): MACs = m*k; exact FLOPs = 2k*m."""
    m, k = call.args["mat"].shape
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, mac_work(call, m * k, m, bias=has_bias), m, has_bias)


@register_op("matmul", onnx=["MatMul"])
def matmul(call: OpCall) -> Work:
    """NumPy-style matmul (ONNX MatMul; PyTorch's matmul is composite and reaches the tracer
    as mm/bmm/mv/dot): (..., m, k) @ (..., k, n) with broadcast batch dimensions, a 1-D operand
    promoted to a vector. Every output is a dot product of length k: MACs = outputs * k;
    exact FLOPs = (2k-1) * outputs."""
    a, out = call.inputs[0], call.out
    k = a.shape[-1] if a.shape else 1
    return mac_work(call, out.numel * k, out.numel, bias=False)


@register_op("dot", aten=["dot", "vdot"])
def dot(call: OpCall) -> Work:
    """(k,) . (k,): MACs = k; exact FLOPs = 2k-1."""
    (k,) = call.inputs[0].shape
    return mac_work(call, k, 1, bias=False)
