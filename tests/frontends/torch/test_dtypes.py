"""Dtypes: meta mode refuses the dtype mixes a real run refuses, and the analysis dtype
(--dtype, dtype=) changes bytes, never counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import modelmeter
from modelmeter.errors import InputError, ModelRunError
from modelmeter.units import ANALYSIS_DTYPES, DTYPE_BYTES


class MatmulParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.p


class AddParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.p


class CatParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(2, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.p])


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0)
        return self.mha(x, x, x)[0]


MODELS = {  # a module taking weights, and the shape of its input
    "linear": (lambda: nn.Linear(4, 3), "2x4"),
    "conv2d": (lambda: nn.Conv2d(4, 2, 3), "1x4x5x5"),
    "conv1d": (lambda: nn.Conv1d(4, 2, 3), "1x4x5"),
    "conv_transpose": (lambda: nn.ConvTranspose2d(4, 2, 3), "1x4x5x5"),
    "layer_norm": (lambda: nn.LayerNorm(4), "2x4"),
    "group_norm": (lambda: nn.GroupNorm(2, 4), "2x4x3"),
    "batch_norm_eval": (lambda: nn.BatchNorm1d(4).eval(), "2x4"),
    "batch_norm_train": (lambda: nn.BatchNorm1d(4), "2x4"),
    "matmul": (MatmulParam, "2x4"),
    "add": (AddParam, "2x4"),
    "cat": (CatParam, "2x4"),
    "attention": (Attention, "2x4"),
    "lstm": (lambda: nn.LSTM(4, 3), "2x4"),
    "prelu": (lambda: nn.PReLU(4), "2x4"),
}
WEIGHTS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
INPUTS = ("float32", "float16", "bfloat16", "float64", "float8_e4m3fn")


def _outcome(model: nn.Module, inputs: str, mode: str) -> str | None:
    """None when the analysis runs, else its one-line error."""
    try:
        modelmeter.analyze(model, inputs, mode=mode)
    except ModelRunError as e:
        return str(e)
    return None


def test_an_fp8_input_into_fp32_weights_is_refused_on_meta_as_in_a_real_run() -> None:
    real = _outcome(nn.Linear(4, 2), "1x4:float8_e4m3fn", "real")
    assert real is not None and "same dtype" in real
    for mode in ("meta", "auto"):
        refused = _outcome(nn.Linear(4, 2), "1x4:float8_e4m3fn", mode)
        assert refused == (
            "module '<root>': addmm mixes float32 and float8_e4m3fn inputs, which a real run "
            "refuses (PyTorch's kernels take one dtype for all operands); give the inputs the "
            "weights' dtype, or --dtype/dtype= to analyse weights and inputs in one"
        )
    # one dtype for all: the analysis runs
    assert _outcome(nn.Linear(4, 2).to(torch.float8_e4m3fn), "1x4:float8_e4m3fn", "meta") is None
    assert modelmeter.analyze(nn.Linear(4, 2), "1x4", dtype="fp8").total().cost.macs == 8


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(
    kind=st.sampled_from(sorted(MODELS)),
    weights=st.sampled_from(WEIGHTS),
    inputs=st.sampled_from(INPUTS),
)
def test_meta_refuses_what_a_real_run_refuses(
    kind: str, weights: torch.dtype, inputs: str
) -> None:
    build, shape = MODELS[kind]
    model = build().to(weights)
    meta = _outcome(model, f"{shape}:{inputs}", "meta")
    real = _outcome(model, f"{shape}:{inputs}", "real")
    if real is None:
        assert meta is None, f"meta refused what a real run accepts: {meta}"
    elif "not implemented for" not in real:  # a CPU kernel missing for one dtype is no mix
        assert meta is not None, f"meta accepted what a real run refuses: {real}"


@pytest.mark.parametrize("dtype", sorted(DTYPE_BYTES))
def test_the_analysis_dtype_never_changes_the_counts(dtype: str) -> None:
    """Every known dtype either gives the fp32 counts or is refused with one line."""
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    fp32 = modelmeter.analyze(model, "2x4").total()
    # 2 rows x (4x3 + 3x2) = 36 MACs; params 4*3+3 + 3*2+2 = 23
    assert (fp32.cost.macs, fp32.params) == (36, 23)
    try:
        total = modelmeter.analyze(model, "2x4", dtype=dtype).total()
    except InputError as e:
        message = str(e)
        assert "\n" not in message
        if dtype in ANALYSIS_DTYPES:  # a dtype PyTorch has no tensors or casts for
            assert "no torch equivalent" in message or "cannot convert" in message
        else:
            assert message.startswith(f"cannot analyse in {dtype}: ")
        return
    assert dtype in ANALYSIS_DTYPES
    assert (total.cost.macs, total.cost.flops, total.params) == (36, 72, 23)


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "bool", "int32", "int64"])
def test_complex_boolean_and_wide_integer_analysis_dtypes_are_refused(dtype: str) -> None:
    with pytest.raises(InputError, match=f"^cannot analyse in {dtype}: "):
        modelmeter.analyze(nn.Linear(4, 2), "1x4", dtype=dtype)
    # an input's own dtype is the model's business: token ids stay int64
    assert modelmeter.analyze(nn.Embedding(10, 4), "1x3:int64").total().params == 40
