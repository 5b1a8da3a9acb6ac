"""Normalisation formulas: batch norm (eval / training / every ATen variant), instance norm,
layer norm, group norm, RMS norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.registry import Formula, OpCall, TensorMeta, Work, lookup


def _op(model, shape: str, key: str, mode: str = "meta") -> modelmeter.Cost:  # noqa: ANN001
    r = modelmeter.analyze(model, shape, mode=mode)
    assert not r.unsupported, r.unsupported
    return r.by_operator()[key].cost


def _formula(target: str, frontend: str = "aten") -> Formula:
    entry = lookup(frontend, target)
    assert isinstance(entry, Formula), target
    return entry


def _call(target: str, args: dict, outputs: tuple[TensorMeta, ...], frontend: str = "aten") -> Work:
    inputs = tuple(v for v in args.values() if isinstance(v, TensorMeta))
    return _formula(target, frontend)(OpCall(target, args, inputs, outputs))


BN = "aten.native_batch_norm"


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_batch_norm_eval(mode: str) -> None:
    # x 2x4x5x5 = 200 elements, C = 4: 2*200 + 4*(4 + 1 gamma) = 420
    c = _op(nn.BatchNorm2d(4).eval(), "2x4x5x5", BN, mode)
    assert (c.macs, c.flops) == (0, 420)
    # read x 800 + gamma, beta, running mean, running var 4*16 = 864; write only y = 800
    # (meta returns (4,) save_mean/save_invstd in eval, real (0,): neither counted)
    assert (c.bytes_read, c.bytes_written) == (864, 800)


def test_batch_norm_eval_no_affine() -> None:
    # 2*200 + 4*4 = 416
    assert _op(nn.BatchNorm2d(4, affine=False).eval(), "2x4x5x5", BN).flops == 416


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_batch_norm_training(mode: str) -> None:
    # 200*(5 + 1 beta) + 4*(2 + 1 gamma + 7 running update) = 1200 + 40 = 1240
    c = _op(nn.BatchNorm2d(4).train(), "2x4x5x5", BN, mode)
    assert c.flops == 1240
    # written: y 800 + save_mean, save_invstd 2*16 + running mean, var 2*16 = 864
    assert c.bytes_written == 864


def test_batch_norm_training_without_running_stats_or_affine() -> None:
    m = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    # 200*5 + 4*2 = 1008; written y 800 + saved stats 32 = 832
    c = _op(m, "2x4x5x5", BN)
    assert (c.flops, c.bytes_written) == (1008, 832)


def test_instance_norm_is_training_batch_norm_over_n_times_c() -> None:
    # InstanceNorm2d(4) on 2x4x5x5 runs native_batch_norm on (1, 8, 5, 5), training:
    # 200*5 + 8*2 = 1016; written y 800 + saved stats 2*8*4 = 864
    c = _op(nn.InstanceNorm2d(4), "2x4x5x5", BN)
    assert (c.flops, c.bytes_written) == (1016, 864)
    # tracking running stats, in eval: eval-mode batch norm over 8 channels with the
    # repeated gamma: 2*200 + 8*(4 + 1) = 440
    m = nn.InstanceNorm2d(4, affine=True, track_running_stats=True).eval()
    assert _op(m, "2x4x5x5", BN).flops == 440


def _bn_fn(op: str, *extra):  # noqa: ANN002, ANN202
    def fn(x: torch.Tensor, w: torch.Tensor) -> object:
        rm, rv = torch.zeros(4, device=x.device), torch.ones(4, device=x.device)
        return getattr(torch.ops.aten, op)(x, w, w, rm, rv, *extra)

    return fn


@pytest.mark.parametrize(
    ("op", "extra", "flops"),
    [
        # eval: 2*200 + 4*(4 + 1) = 420
        ("_native_batch_norm_legit_no_training", (0.1, 1e-5), 420),
        ("_batch_norm_no_update", (0.1, 1e-5), 420),
        ("cudnn_batch_norm", (False, 0.1, 1e-5), 420),
        # training with running stats: 200*6 + 4*(2 + 1 + 7) = 1240
        ("_batch_norm_with_update", (0.1, 1e-5), 1240),
        ("_native_batch_norm_legit", (True, 0.1, 1e-5), 1240),
        ("_native_batch_norm_legit_functional", (True, 0.1, 1e-5), 1240),
        ("cudnn_batch_norm", (True, 0.1, 1e-5), 1240),
    ],
)
def test_batch_norm_variants(op: str, extra: tuple, flops: int) -> None:
    r = modelmeter.analyze(_bn_fn(op, *extra), ("2x4x5x5", "4"), mode="meta")
    c = r.by_operator()[f"aten.{op}"].cost
    assert c.flops == flops
    # training writes y + saved stats + running stats: 800 + 32 + 32; eval only y
    assert c.bytes_written == (864 if flops == 1240 else 800)


def test_batch_norm_legit_no_stats() -> None:
    def fn(x: torch.Tensor, w: torch.Tensor) -> object:
        return torch.ops.aten._native_batch_norm_legit(x, w, w, True, 0.1, 1e-5)

    c = modelmeter.analyze(fn, ("2x4x5x5", "4")).total().cost
    # training, no running stats: 200*6 + 4*(2 + 1) = 1212; written 800 + 32
    assert (c.flops, c.bytes_written) == (1212, 832)


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_layer_norm(mode: str) -> None:
    key = "aten.native_layer_norm"
    # 2x3x8: 48 elements, 6 rows of 8: 48*(5 + 2) + 2*6 = 348
    c = _op(nn.LayerNorm(8), "2x3x8", key, mode)
    assert c.flops == 348
    # written: y 192 + mean 24 + rstd 24 (the kernel really writes them) = 240
    assert c.bytes_written == 240
    # no affine: 48*5 + 12 = 252; gamma only: 48*6 + 12 = 300
    assert _op(nn.LayerNorm(8, elementwise_affine=False), "2x3x8", key).flops == 252
    assert _op(nn.LayerNorm(8, bias=False), "2x3x8", key).flops == 300
    # normalising the last two dims (3, 8): 2 rows of 24: 48*7 + 2*2 = 340
    assert _op(nn.LayerNorm((3, 8)), "2x3x8", key).flops == 340


def test_group_norm() -> None:
    # 2x4x5x5, 2 groups: N*G = 4 groups of 50: 200*(5 + 2) + 2*4 = 1408
    assert _op(nn.GroupNorm(2, 4), "2x4x5x5", "aten.native_group_norm").flops == 1408
    # no affine: 200*5 + 8 = 1008
    m = nn.GroupNorm(2, 4, affine=False)
    assert _op(m, "2x4x5x5", "aten.native_group_norm").flops == 1008


def test_fused_rms_norm_matches_its_decomposition() -> None:
    x, w = TensorMeta((2, 3, 8)), TensorMeta((8,))
    out = (TensorMeta((2, 3, 8)), TensorMeta((2, 3, 1)))
    args = {"input": x, "normalized_shape": [8], "weight": w, "eps": 1e-6}
    # 48 elements, 6 rows: 48*(3 + 1 gamma) + 2*6 = 204
    assert _call("_fused_rms_norm", args, out).flops == 204
    # without weight: 48*3 + 12 = 156
    assert _call("_fused_rms_norm", {**args, "weight": None}, out).flops == 156
    # on CPU nn.RMSNorm decomposes (pow, mean, add, rsqrt, mul, mul): the same 204
    r = modelmeter.analyze(nn.RMSNorm(8), "2x3x8")
    assert not r.unsupported
    assert r.total().cost.flops == 204


def test_onnx_names() -> None:
    for name in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        assert isinstance(lookup("onnx", name), Formula)
    x = TensorMeta((2, 4, 5, 5))
    # ONNX InstanceNormalization (x, scale, B): 200*6 + 8*(2 + 1) = 1224
    w = _formula("InstanceNormalization", "onnx")(
        OpCall("InstanceNormalization", {}, (x, TensorMeta((4,)), TensorMeta((4,))), (x,))
    )
    assert w.flops == 1224
    # ONNX BatchNormalization, inference (x, scale, B, mean, var): 2*200 + 4*5 = 420
    stats = tuple(TensorMeta((4,)) for _ in range(4))
    bn = _formula("BatchNormalization", "onnx")
    assert bn(OpCall("BatchNormalization", {}, (x, *stats), (x,))).flops == 420
