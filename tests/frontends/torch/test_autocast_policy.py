"""CUDA autocast's policy on the meta device (frontends/torch/autocast_policy.py and
autocast_meta.py): the lists against the installed PyTorch's CUDA autocast registrations and
its CUDA kernels themselves (run on fake CUDA tensors, which carry CUDA's autocast key on a
machine without a GPU), the weight-cast cache, and the CPU's different lists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from autocast_models import Tiny
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from modelmeter.errors import InputError
from modelmeter.frontends.torch.autocast_meta import autocast
from modelmeter.frontends.torch.autocast_policy import KINDS, STAND_INS

BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32
VIEWS = {"detach", "t", "view", "_unsafe_view", "transpose", "expand", "unsqueeze"}


class Recorder(TorchDispatchMode):
    """(op, input dtypes, output dtype) of every ATen op below autograd."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, tuple[str, ...], str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) else out
        # tensors made, views apart (the fake tensors' device queries make none)
        if isinstance(first, torch.Tensor) and func.__name__.split(".")[0] not in VIEWS:
            ins = tuple(str(a.dtype)[6:] for a in args if isinstance(a, torch.Tensor))
            self.ops.append((func.__name__, ins, str(first.dtype)[6:]))
        return out


@contextmanager
def cuda_autocast(low: torch.dtype) -> Iterator[None]:
    """PyTorch's own CUDA autocast, on fake CUDA tensors (``torch.autocast("cuda")`` turns
    itself off without a GPU; the low-level switch does not)."""
    with FakeTensorMode():
        torch.set_autocast_enabled("cuda", True)
        torch.set_autocast_dtype("cuda", low)
        try:
            yield
        finally:
            torch.set_autocast_enabled("cuda", False)


def test_lists_are_the_installed_cuda_autocast_ops() -> None:
    registered = {
        n.removeprefix("aten::")
        for n in torch._C._dispatch_get_all_op_names()
        if n.startswith("aten::")
        and torch._C._dispatch_has_kernel_for_dispatch_key(n, "AutocastCUDA")
    }
    # _cudnn_rnn is cast by AutocastRNN.cpp and never runs on meta (an RNN runs its cells)
    assert registered - {"_cudnn_rnn"} == set(KINDS) - STAND_INS
    assert len(registered) == 121


def _calls(dev: str, dt: torch.dtype) -> dict[str, Callable[[], Any]]:
    x = torch.empty(4, 8, device=dev, dtype=dt, requires_grad=True)
    w = torch.empty(8, 8, device=dev, dtype=dt, requires_grad=True)
    x3 = torch.empty(2, 4, 8, device=dev, dtype=dt)
    target = torch.zeros(4, dtype=torch.long, device=dev)
    return {
        "linear": lambda: F.linear(x, w, w[0]),
        "matmul": lambda: x @ w,
        "bmm": lambda: torch.bmm(x3, x3.transpose(1, 2)),
        "baddbmm": lambda: torch.baddbmm(x3[..., :4], x3, x3.transpose(1, 2)),
        "conv2d": lambda: F.conv2d(x3[:1, None], w[None, None, :3, :3]),
        "softmax": lambda: x.softmax(-1),
        "log_softmax": lambda: F.log_softmax(x, -1),
        "softmax, dtype given": lambda: x.softmax(-1, dtype=dt),
        "layer_norm": lambda: F.layer_norm(x, (8,), w[0], w[1]),
        "group_norm": lambda: F.group_norm(x3, 2),
        "rms_norm": lambda: F.rms_norm(x, (8,)),
        "exp": lambda: x.exp(),
        "pow": lambda: x**3.0,
        "rsqrt": lambda: x.rsqrt(),
        "sum": lambda: x.sum(),
        "sum over a dim": lambda: x.sum(-1),
        "cumsum": lambda: x.cumsum(0),
        "norm": lambda: x.norm(),
        "normalize": lambda: F.normalize(x),
        "cross_entropy": lambda: F.cross_entropy(x, target),
        "mse_loss": lambda: F.mse_loss(x, w[:4]),
        "logsumexp": lambda: x.logsumexp(-1),
        "addcmul": lambda: torch.addcmul(x, x, x),
        "relu": lambda: x.relu(),
        "gelu": lambda: F.gelu(x),
        "add": lambda: x + x,
        "dropout": lambda: F.dropout(x, 0.1),
    }


@pytest.mark.parametrize("inputs", [BF16, FP32, FP16])
@pytest.mark.parametrize("low", [BF16, FP16])
def test_each_op_casts_as_cuda_autocast_does(inputs: torch.dtype, low: torch.dtype) -> None:
    """The same ATen ops, casts included, in the same dtypes as CUDA's autocast kernels."""
    if inputs != FP32 and inputs != low:
        inputs = FP32  # a model's tensors are in fp32 or in the low dtype
    cuda, meta = {}, {}
    with cuda_autocast(low):
        for name, call in _calls("cuda", inputs).items():
            with Recorder() as rec:
                call()
            cuda[name] = rec.ops
    with autocast(low):
        for name, call in _calls("meta", inputs).items():
            with Recorder() as rec:
                call()
            meta[name] = rec.ops
    for name in cuda:
        if name in ("conv2d", "rms_norm", "dropout"):  # kernels by device: cudnn_convolution,
            # _fused_rms_norm, native_dropout on CUDA, the generic ones on meta
            assert _to_copies(cuda[name]) == _to_copies(meta[name]), name
            assert cuda[name][-1][2] == meta[name][-1][2], name
        else:
            assert cuda[name] == meta[name], name


def test_autocast_runs_low_ops_low_and_fp32_ops_fp32() -> None:
    x = torch.empty(4, 8, device="meta", dtype=BF16)
    w = torch.empty(8, 8, device="meta", dtype=FP32)
    with autocast(BF16):
        assert F.linear(x, w).dtype == BF16
        assert F.layer_norm(x, (8,)).dtype == FP32
        assert x.softmax(-1).dtype == FP32
        assert (x + x).dtype == BF16  # not listed: as without autocast
    assert F.layer_norm(x, (8,)).dtype == BF16  # after the block: no policy


class Shared(nn.Module):
    """One fp32 Linear applied twice in a forward."""

    def __init__(self, device: str = "meta") -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x))


def _to_copies(ops: list) -> list:
    return [o for o in ops if o[0] == "_to_copy.default"]


def test_weight_casts_are_cached_once_per_region_as_cuda_autocast_does() -> None:
    m = Shared()
    x = torch.empty(4, 16, device="meta")
    with Recorder() as rec:
        with autocast(BF16):
            m(m(x))  # the layer runs 4 times in one region
        with autocast(BF16):
            m(x)  # twice in a new region
    # region 1: the weight and the bias once each (cached: fp32 leaves that require grad),
    # and the fp32 input once (its later inputs are the layer's bf16 outputs) = 3 casts;
    # region 2: the cache is gone: weight, bias and input again = 3 casts
    casts = _to_copies(rec.ops)
    assert len(casts) == 3 + 3
    assert all(c[1:] == (("float32",), "bfloat16") for c in casts)
    with cuda_autocast(BF16):  # the same count from CUDA's own kernels, in one region
        mc = Shared("cuda")
        with Recorder() as real:
            mc(mc(torch.empty(4, 16, device="cuda")))
    assert len(_to_copies(real.ops)) == 3


def test_weight_cast_bytes_are_counted_once_per_forward() -> None:
    from modelmeter.frontends.torch.tracer import Lifetimes, OpTracer, ScopeTracker

    m = Shared()
    x = torch.empty(4, 16, device="meta")
    tracer = OpTracer(ScopeTracker({}), set(), Lifetimes(set()), "exact")
    with tracer, autocast(BF16):
        m(x)
    casts = [e.call for e in tracer.events if e.target == "_to_copy"]
    costs = [(c.inputs[0].nbytes, c.out.nbytes) for c in casts]  # the builder's bytes
    # weight 16 x 16 fp32 -> bf16: read 256 x 4 = 1,024 B, write 256 x 2 = 512 B;
    # bias 16: read 64, write 32; input 4 x 16: read 256, write 128 (the second call's input
    # is already bf16: no cast)
    assert sorted(costs) == [
        (64, 32), (256, 128), (1024, 512)]  # fmt: skip


def test_banned_op_is_refused_as_cuda_autocast_refuses_it() -> None:
    x = torch.empty(4, device="meta")
    with autocast(BF16), pytest.raises(InputError, match="unsafe to autocast"):
        F.binary_cross_entropy(x.sigmoid(), x)


def test_cpu_autocast_differs_from_the_trace_only_where_its_lists_do() -> None:
    """A real CPU run under ``torch.autocast("cpu")`` and the meta trace under the CUDA policy
    agree on the matmuls (bf16) and the loss (fp32); layer norm and softmax, on CUDA's fp32
    list and not on the CPU's, stay in bf16 on the CPU. The trace follows CUDA's lists."""

    def run(device: str, policy: Any) -> dict[str, str]:
        torch.manual_seed(0)
        m = Tiny().to(device=device, dtype=BF16)
        x = torch.randn(4, 8, device=device, dtype=BF16)
        with Recorder() as rec, policy:
            m(x)
        return {op: out for op, _, out in rec.ops if not op.startswith("_to_copy")}

    cpu = run("cpu", torch.autocast("cpu", dtype=BF16))
    meta = run("meta", autocast(BF16))
    same = {op for op in cpu if cpu[op] == meta.get(op)}
    assert {"addmm.default", "nll_loss_forward.default"} <= same
    assert cpu["addmm.default"] == "bfloat16" and cpu["nll_loss_forward.default"] == "float32"
    differ = {op: (cpu[op], meta[op]) for op in cpu if op in meta and cpu[op] != meta[op]}
    assert differ == {
        "native_layer_norm.default": ("bfloat16", "float32"),
        "_softmax.default": ("bfloat16", "float32"),
        # the CPU casts cross_entropy's input to fp32; CUDA lists log_softmax and nll_loss
        # instead, and cross_entropy asks log_softmax for its input's dtype: bf16
        "_log_softmax.default": ("float32", "bfloat16"),
    }
