"""Matrix products: mm, addmm (linear), bmm, baddbmm, addbmm, mv, addmv, dot, and the
grouped matmul of mixture-of-experts layers (_grouped_mm).

``matmul`` and ``linear`` are composite in PyTorch and reach the tracer as these ops.

Complex operands are counted in real arithmetic: a complex multiply-accumulate is 4 real
MACs (ac, bd, ad, bc, each accumulated) and every complex output is 2 real outputs, so
MACs = 4 * (complex MACs) and exact FLOPs = 2*MACs - 2*outputs (8k - 2 per complex output of
a length-k product). ``FlopCounterMode`` ignores the dtype and counts 2*m*k*n either way.
"""

from modelmeter.registry import OpCall, TensorMeta, Work, mac_work, register_op


def _mac(call: OpCall, macs: int, outputs: int, bias: bool) -> Work:
    """mac_work, in real arithmetic for complex operands (see the module docstring). An empty
    contraction (k = 0: the outputs are zeros, or the bias) costs nothing."""
    if macs == 0:
        return Work()
    if call.outputs and call.out.dtype.startswith("complex"):
        return mac_work(call, 4 * macs, 2 * outputs, bias)
    return mac_work(call, macs, outputs, bias)


def _scaled(call: OpCall, work: Work, outputs: int, has_bias: bool) -> Work:
    """Extra multiplies of ``beta*self + alpha*(a@b)`` when alpha/beta are not 1 (exact only;
    2 per complex output)."""
    if call.convention == "2mac":
        return work
    extra = 0
    if call.arg("alpha", 1) != 1:
        extra += outputs
    if has_bias and call.arg("beta", 1) != 1:
        extra += outputs
    if call.outputs and call.out.dtype.startswith("complex"):
        extra *= 2
    return Work(macs=work.macs, flops=work.flops + extra)


@register_op("mm", family="matmul", aten=["mm"])
def mm(call: OpCall) -> Work:
    """(m,k) @ (k,n): MACs = m*k*n; exact FLOPs = (2k-1)*m*n, 2mac FLOPs = 2*m*k*n."""
    (m, k), n = call.inputs[0].shape, call.inputs[1].shape[-1]
    return _mac(call, m * k * n, m * n, bias=False)


@register_op("scaled_mm", family="matmul", aten=["_scaled_mm"])
def scaled_mm(call: OpCall) -> Work:
    """Scaled (fp8) matmul ``(a @ b) * scale_a * scale_b + bias`` of (m,k) @ (k,n):
    MACs = m*k*n; exact FLOPs = (2k-1)*m*n + the scaling: one multiply per output by the
    combined scale when both scales are per-tensor, two when either is row- or column-wise,
    + one add per output with a bias. 2mac FLOPs = 2*m*k*n."""
    a, b = call.args.get("self"), call.args.get("mat2")
    if not isinstance(a, TensorMeta) or not isinstance(b, TensorMeta):
        a, b = call.inputs[0], call.inputs[1]
    (m, k), n = a.shape, b.shape[-1]
    bias = isinstance(call.args.get("bias"), TensorMeta)
    work = mac_work(call, m * k * n, m * n, bias=bias)
    if call.convention == "2mac":
        return work
    scales = [call.args.get("scale_a"), call.args.get("scale_b")]
    wise = any(isinstance(t, TensorMeta) and t.numel > 1 for t in scales)
    return Work(macs=work.macs, flops=work.flops + (2 if wise else 1) * m * n)


@register_op("addmm", family="matmul", aten=["addmm"], onnx=["Gemm"])
def addmm(call: OpCall) -> Work:
    """bias + (m,k) @ (k,n), i.e. a linear layer: MACs = m*k*n; exact FLOPs = 2k*m*n (the bias
    add takes the place of the missing add; the source document's FC formula 2I*O per row)."""
    m, k = call.args["mat1"].shape
    n = call.args["mat2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, _mac(call, m * k * n, m * n, bias=has_bias), m * n, has_bias)


@register_op("bmm", family="matmul", aten=["bmm"])
def bmm(call: OpCall) -> Work:
    """(b,m,k) @ (b,k,n): MACs = b*m*k*n; exact FLOPs = (2k-1)*b*m*n."""
    b, m, k = call.inputs[0].shape
    n = call.inputs[1].shape[-1]
    return _mac(call, b * m * k * n, b * m * n, bias=False)


@register_op("baddbmm", family="matmul", aten=["baddbmm"])
def baddbmm(call: OpCall) -> Work:
    """bias + (b,m,k) @ (b,k,n): MACs = b*m*k*n; exact FLOPs = 2k*b*m*n (+ alpha/beta scaling)."""
    b, m, k = call.args["batch1"].shape
    n = call.args["batch2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(
        call, _mac(call, b * m * k * n, b * m * n, bias=has_bias), b * m * n, has_bias
    )


@register_op("addbmm", family="matmul", aten=["addbmm"])
def addbmm(call: OpCall) -> Work:
    """bias + sum_b (b,m,k) @ (b,k,n) -> (m,n): MACs = b*m*k*n; each output sums b*k products,
    so exact FLOPs = (2*b*k-1)*m*n without bias, 2*b*k*m*n with it."""
    b, m, k = call.args["batch1"].shape
    n = call.args["batch2"].shape[-1]
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, _mac(call, b * m * k * n, m * n, bias=has_bias), m * n, has_bias)


@register_op("mv", family="matmul", aten=["mv"])
def mv(call: OpCall) -> Work:
    """(m,k) @ (k,): MACs = m*k; exact FLOPs = (2k-1)*m."""
    m, k = call.inputs[0].shape
    return _mac(call, m * k, m, bias=False)


@register_op("addmv", family="matmul", aten=["addmv"])
def addmv(call: OpCall) -> Work:
    """bias + (m,k) @ (k,): MACs = m*k; exact FLOPs = 2k*m."""
    m, k = call.args["mat"].shape
    has_bias = call.arg("beta", 1) != 0
    return _scaled(call, _mac(call, m * k, m, bias=has_bias), m, has_bias)


@register_op("matmul", family="matmul", onnx=["MatMul"])
def matmul(call: OpCall) -> Work:
    """NumPy-style matmul (ONNX MatMul; PyTorch's matmul is composite and reaches the tracer
    as mm/bmm/mv/dot): (..., m, k) @ (..., k, n) with broadcast batch dimensions, a 1-D operand
    promoted to a vector. Every output is a dot product of length k: MACs = outputs * k;
    exact FLOPs = (2k-1) * outputs."""
    a, out = call.inputs[0], call.out
    k = a.shape[-1] if a.shape else 1
    return _mac(call, out.numel * k, out.numel, bias=False)


@register_op("dot", family="matmul", aten=["dot", "vdot"])
def dot(call: OpCall) -> Work:
    """(k,) . (k,): MACs = k; exact FLOPs = 2k-1."""
    (k,) = call.inputs[0].shape
    return _mac(call, k, 1, bias=False)


@register_op("grouped_mm", family="matmul", aten=["_grouped_mm"])
def grouped_mm(call: OpCall) -> Work:
    """Grouped matmul (mixture-of-experts layers; ``offs`` ends the groups along the jagged
    dimension). MACs = sum over groups of m_g*k_g*n_g, known without the data-dependent
    offsets since the groups tile that dimension: 2D (M,K) x 3D (G,K,N), rows split: M*K*N;
    3D (G,M,K) x 2D (K,N), columns split: M*K*N; 2D x 2D, K split, out (G,M,N): M*K*N;
    3D x 3D (batched): G*M*K*N. Assumes offs[-1] = the jagged length (as transformers calls
    it; else an upper bound). Exact FLOPs = 2*MACs - outputs (+ outputs with a bias)."""
    a, b = call.args.get("self"), call.args.get("mat2")
    if not isinstance(a, TensorMeta) or not isinstance(b, TensorMeta):
        a, b = call.inputs[0], call.inputs[1]
    outputs = call.out.numel
    if a.ndim == 2 and b.ndim == 2:
        macs = a.shape[0] * a.shape[1] * b.shape[1]
    else:
        macs = outputs * a.shape[-1]
    bias = isinstance(call.args.get("bias"), TensorMeta)
    return _mac(call, macs, outputs, bias=bias)
