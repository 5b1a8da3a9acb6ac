"""Sweeps and exact formulas on real models (usecases/sweep.py): each formula equals a direct
trace, exactly, at sizes it was never fitted on; the leading coefficients are derived by hand.
Reduced-layer copies of the shipped configs keep the traces quick (one layer: per-layer
figures are what the derivations check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_gpt2 import tiny_gpt2
from torch import nn

import modelmeter
from modelmeter.analysis.polynomial import MultiPolynomial
from modelmeter.analysis.report_formula import COUNTS, totals
from modelmeter.errors import InputError
from modelmeter.models.hf import preset_config
from modelmeter.usecases.sweep import fit_points, request_at


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    return tiny_gpt2(tmp_path)


def _one_layer(tmp: Path, preset: str, key: str) -> str:
    config = preset_config(preset)
    config[key] = 1
    path = tmp / f"{preset}-1.json"
    path.write_text(json.dumps(config))
    return f"hf:{path}"


def _direct(model: object, *inputs: object, **kw: object) -> dict[str, int]:
    return dict(zip(COUNTS, totals(modelmeter.analyze(model, *inputs, **kw))))


def _check(formula: modelmeter.Formula, direct: dict[str, int], **sizes: int) -> None:
    got = formula.at(**sizes)
    assert got == direct, (sizes, got, direct)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _one_layer(tmp_path_factory.mktemp("gpt2"), "gpt2", "n_layer")


def test_linear_over_batch_and_sequence(tmp_path: Path):
    f = modelmeter.formula(nn.Linear(4, 8), "1x2x4")
    assert f.variables == ("batch", "seq")
    assert f.counts["macs"].to_dict()["terms"] == [{"powers": [1, 1], "coefficient": 32}]  # 4*8
    # exact FLOPs: 4 multiplies + 3 adds + 1 bias add = 8 per output, 8 outputs: 64*b*s
    assert f.at(batch=3, seq=5)["flops"] == 64 * 15
    # read: weights (32 + 8) * 4 B = 160 plus the input 4 * 4 B per position
    assert f.at(batch=3, seq=5)["bytes_read"] == 160 + 16 * 15
    assert f.at(batch=3, seq=5)["params"] == 40
    assert "MACs = b·(32·s)" in f.lines()


def test_gpt2_formula_equals_direct_trace_at_held_out_sizes(gpt2: str):
    f = modelmeter.formula(gpt2)
    # one layer, per token: qkv 768*2304 + proj 768*768 + mlp 2*768*3072 = 7,077,888;
    # lm head 768*50257 = 38,597,376 -> 45,675,264*s; attention QK^T and AV: 2*768*s^2
    macs = f.counts["macs"]
    assert isinstance(macs, MultiPolynomial)
    assert dict(macs.terms) == {(1, 1): 45_675_264, (1, 2): 1_536}
    # wte 38,597,376 + wpe 786,432 + layer 7,087,872 + ln_f 1,536 (lm head tied)
    assert f.at(batch=1, seq=1)["params"] == 46_473_216
    assert f.traces <= 10  # degree 1 in b, 2 in s: 3 + 3 axis points, 2 grid, 1 off-grid
    for b, s in ((3, 200), (5, 77)):
        _check(f, _direct(gpt2, kwargs={"input_ids": f"{b}x{s}:int64"}), batch=b, seq=s)


def test_gpt2_training_step_formula(gpt2: str):
    # forward and backward: each linear layer's backward is two products of its forward's
    # size (input and weight gradients), 3 * 45,675,264 = 137,025,792 per token; attention's
    # FlashAttention-style backward recomputes Q K^T and forms four gradient products:
    # (2 + 5) * 768 = 5,376 per s^2
    f = modelmeter.formula(gpt2, backward=True, dims={"batch": [2, 3, 4, 5], "seq": [64, 128, 192, 256]})
    assert dict(f.counts["macs"].terms) == {(1, 1): 137_025_792, (1, 2): 5_376}
    # (from batch 2: at batch 1 the backward's bytes follow other paths.)
    _check(f, _direct(gpt2, kwargs={"input_ids": "6x200:int64"}, backward=True), batch=6, seq=200)


def test_llama_formula_equals_direct_trace(tmp_path: Path):
    model = _one_layer(tmp_path, "llama-2-7b", "num_hidden_layers")
    f = modelmeter.formula(model)
    # per token: q, k, v, o 4 * 4096^2 = 67,108,864; MLP 3 * 4096 * 11008 = 135,266,304;
    # lm head 4096 * 32000 = 131,072,000 -> 333,447,168*s; attention 2 * 4096 * s^2
    assert f.counts["macs"].to_dict()["terms"] == [
        {"powers": [1, 1], "coefficient": 333_447_168},
        {"powers": [1, 2], "coefficient": 8_192},
    ]
    _check(f, _direct(model, kwargs={"input_ids": "2x1000:int64"}), batch=2, seq=1000)


def test_vit_batch_formula():
    # the sequence is fixed, (224/16)^2 + 1 = 197 tokens; MACs and FLOPs are linear in the
    # batch with no constant. Bytes are not one polynomial from batch 1: at batch 1 PyTorch's
    # attention takes another path (its products run as aten.addmm, from batch 2 as
    # aten.bmm), so bytes read are 501,194,656 at b=1, then +198,497,280, then +176,710,656
    # per image. The formula says so instead of extrapolating from b=1 ...
    f = modelmeter.formula("torchvision:vit_b_16", dims=["batch"])
    one = _direct("torchvision:vit_b_16")
    assert dict(f.counts["macs"].terms) == {(1,): one["macs"]}  # MACs = b * MACs(1)
    assert "not a polynomial" in f.counts["bytes_read"]
    # ... and from batch 2 on every count is one
    f2 = modelmeter.formula("torchvision:vit_b_16", dims={"batch": [2, 3, 4, 5]})
    assert not any(isinstance(p, str) for p in f2.counts.values())
    assert f2.at(batch=1)["macs"] == one["macs"]
    _check(f2, _direct("torchvision:vit_b_16", batch=7), batch=7)


def test_resnet_batch_formula():
    f = modelmeter.formula("torchvision:resnet18", dims=["batch"])
    assert f.at(batch=1)["params"] == 11_689_512  # resnet18's published parameter count
    assert f.counts["macs"].divided_by("batch") is not None  # MACs = b * MACs(1)
    _check(f, _direct("torchvision:resnet18", batch=6), batch=6)


def test_onnx_symbolic_dims_sweep(tmp_path: Path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    # Y = X @ W (W 4x8) and A = X @ X^T over X [N, S, 4]: MACs = 32*N*S + 4*N*S^2
    w = numpy_helper.from_array(np.ones((4, 8), np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
        helper.make_node("Transpose", ["X"], ["XT"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["X", "XT"], ["A"]),
    ]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", "S", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "A")]
    graph = helper.make_graph(nodes, "g", [x], outs, [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    path = tmp_path / "sym.onnx"
    onnx.save(m, path)
    result = modelmeter.sweep(str(path), dims={"N": [1, 2, 4], "S": [3, 5, 8, 13]})
    f = result.formula
    assert f is not None
    assert dict(f.counts["macs"].terms) == {(1, 1): 32, (1, 2): 4}
    for row in result.rows:
        direct = _direct(str(path), dims=row.point)
        assert row.totals == direct, row.point
    assert {r.source for r in result.rows} == {"traced", "formula"}
    # the formula alone, fitted on N, S = 1, 2, 3, 4 (no size given in the request)
    g = modelmeter.formula(str(path), dims=["N", "S"])
    assert g.counts["macs"] == f.counts["macs"]
    assert g.at(N=6, S=21)["macs"] == 32 * 6 * 21 + 4 * 6 * 21 * 21  # 4032 + 10584 = 14616


def test_resnet_image_size_formula():
    # at sizes a multiple of 32 every feature map is size/2, /4, ... /32 exactly: each count
    # is a polynomial in n = H = W (degree 2: conv MACs grow with H*W) ...
    f = modelmeter.formula("torchvision:resnet18", dims={"size": [64, 96, 128, 160, 192, 224]})
    macs = f.counts["macs"]
    # the final Linear(512, 1000) after the global average pool: 512,000 MACs at any size;
    # the convolutions: 1,814,073,344 - 512,000 = 1,813,561,344 = 36,144 * 224^2 at n = 224
    assert dict(macs.terms) == {(0,): 512_000, (2,): 36_144}
    assert f.at(size=224)["macs"] == _direct("torchvision:resnet18")["macs"]  # 1,814,073,344
    _check(f, _direct("torchvision:resnet18", "1x3x320x320"), size=320)
    # ... while at odd sizes the strided layers round (floor): refused, not extrapolated
    g = modelmeter.formula("torchvision:resnet18", dims={"size": [65, 66, 67, 68, 69, 70]})
    assert isinstance(g.counts["macs"], str)




def test_rows_from_the_formula_equal_traced_rows(tiny: str):
    grid = {"batch": [1, 2, 3], "seq": [16, 32, 64, 100, 128]}
    fast = modelmeter.sweep(tiny, **grid, hardware="h100-sxm")
    slow = modelmeter.sweep(tiny, **grid, hardware="h100-sxm", formula=False)
    assert fast.traces < len(fast.rows) == len(slow.rows) == slow.traces == 15
    assert "formula" in {r.source for r in fast.rows}
    for a, b in zip(fast.rows, slow.rows):
        assert (a.point, a.totals, a.latency_s, a.bound) == (b.point, b.totals, b.latency_s, b.bound)
    d = fast.to_dict()
    assert d["schema"] == "modelmeter.sweep/1" and d["formula"]["schema"] == "modelmeter.formula/1"
    assert d["rows"][0]["batch"] == 1 and d["rows"][0]["seq"] == 16


class SizeDependent(nn.Module):
    """Multiplies by 2 (s mod 3) times: an op count that depends on the data's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(x.shape[1] % 3):
            x = x * 2
        return x + 1


def test_a_count_that_is_not_polynomial_is_refused():
    result = modelmeter.sweep(SizeDependent(), "1x4x8", seq=[4, 5, 6, 7, 8])
    f = result.formula
    # FLOPs = 8*s*(1 + s mod 3): 64, 120, 48 at s = 4, 5, 6 then 112 at 7, off any quadratic
    assert isinstance(f.counts["flops"], str) and "not a polynomial" in f.counts["flops"]
    assert isinstance(f.counts["params"], MultiPolynomial)  # 0, still a polynomial
    assert all(r.source == "traced" for r in result.rows)
    assert [r.totals["flops"] for r in result.rows] == [8 * s * (1 + s % 3) for s in range(4, 9)]
    assert "no formula" in "\n".join(f.lines())


def test_sizes_name_what_the_inputs_have():
    base = modelmeter.inputs.InputRequest.from_api("1x3x224x224")
    assert request_at(base, {"size": 64, "batch": 2}).args[0].shape == (2, 3, 64, 64)
    with pytest.raises(InputError, match="seq: no sequence input"):
        request_at(base, {"seq": 8})
    # dims beyond batch/seq/size are ONNX symbolic dimensions
    assert request_at(base, {"N": 3}).dims == {"N": 3}


def test_a_pytorch_model_refuses_a_size_it_has_no_place_for():
    # Before: "--dim/dims only applies to ONNX models", naming an option never given.
    model = torch.nn.Linear(4, 4)
    with pytest.raises(InputError, match="cannot sweep 'foo' on a PyTorch model"):
        modelmeter.sweep(model, "1x4", dims={"foo": [1, 2]})
    with pytest.raises(InputError, match="cannot sweep 'foo' on a PyTorch model"):
        modelmeter.formula(model, "1x4", dims=["batch", "foo"])


def test_fit_points_extend_a_short_sweep():
    # degree 2 needs 4 points: 1, 2 then steps of the smallest (1): 3, 4
    assert fit_points([2, 1], 2) == [1, 2, 3, 4]
    # the largest comes where a quadratic is checked: fitted on 128, 256, 512, checked at 2048
    assert fit_points([128, 256, 512, 1024, 2048], 2) == [128, 256, 512, 2048, 1024]


class PeakMoves(nn.Module):
    """Two moments compete for the activation peak: a wide copy (linear in s) and an
    attention-like s x s product (quadratic): which is larger changes with s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [b, s, 4] float32
        h = x.repeat(1, 1, 16)  # [b, s, 64]: 256 B per position, alive with x (16 B)
        y = h.sum(-1)
        del h  # freed before the product
        a = x @ x.transpose(1, 2)  # [b, s, s]: 4*s B per position
        return y.sum() + a.sum()


def test_a_peak_that_moves_is_exact_at_every_size():
    # the peak is max over the run's moments; each moment's live bytes are a polynomial:
    # x + h + y = 16*s + 256*s + 4*s = 276*s, then x + y + a + three 4-byte scalars =
    # 20*s + 4*s^2 + 12. The quadratic one wins from s = 64 on (4*64^2 + 20*64 + 12 = 17,676
    # > 276*64 = 17,664). A single polynomial fitted on s = 8, 16, 32 would miss that; the
    # maximum of the moments' polynomials is exact on both sides
    grid = {"seq": [8, 16, 32, 64, 100, 128, 256, 512, 1000]}
    fast = modelmeter.sweep(PeakMoves(), "1x8x4", **grid)
    slow = modelmeter.sweep(PeakMoves(), "1x8x4", **grid, formula=False)
    assert "formula" in {r.source for r in fast.rows}
    assert [r.totals for r in fast.rows] == [r.totals for r in slow.rows]
    peak = fast.formula.counts["peak_activation_bytes"]
    assert peak.at(seq=8) == slow.rows[0].totals["peak_activation_bytes"]
    assert peak.format() == "max(12 + 20·seq + 4·seq², 276·seq)"


def test_storage_formats_price_the_swept_weights():
    # Linear(4, 8, no bias) over [b, 3, 4]: the weight is 8 rows of 4.
    # fp32: 32 * 4 = 128 weight bytes read; int8 (one fp16 scale per row): 8*4*1 + 8*2 = 48.
    # MACs do not change: 8*4 per token, 3 tokens per item -> 96*b.
    import torch

    from modelmeter.usecases.sweep import sweep as run_sweep

    model = torch.nn.Linear(4, 8, bias=False)
    plain = run_sweep(model, [(2, 3, 4)], batch=[1, 2, 3, 4, 5])
    int8 = run_sweep(model, [(2, 3, 4)], batch=[1, 2, 3, 4, 5], weights="int8")
    assert [r.totals["weight_bytes"] for r in plain.rows] == [128] * 5
    assert [r.totals["weight_bytes"] for r in int8.rows] == [48] * 5
    assert [r.totals["macs"] for r in int8.rows] == [96 * b for b in (1, 2, 3, 4, 5)]
