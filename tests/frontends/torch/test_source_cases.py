"""The cases the source document is about (issue 16): a model analysed as int8-quantised for an
int8 NPU, real mode on a named model, a named model's input dtype kept when only a shape is
given, and a half-precision input into float32 weights refused as PyTorch refuses it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import ModelRunError
from modelmeter.inputs import InputRequest, ShapeInput


def test_resnet50_as_int8_counts_as_fp32_and_charges_one_byte_per_element() -> None:
    fp32 = modelmeter.analyze("torchvision:resnet50")
    int8 = modelmeter.analyze("torchvision:resnet50", dtype="int8")
    a, b = fp32.total(), int8.total()
    # torchvision's published 4.09 GMACs: the int8 analysis runs the same ops on the same shapes
    assert (
        (b.cost.macs, b.cost.flops) == (a.cost.macs, a.cost.flops) == (4_089_184_256, 8_206_427_904)
    )
    # weights: 25,557,032 params x 1 byte; weight bytes read (params and BN buffers) are a
    # quarter of fp32's 4 bytes each
    param_bytes = sum(n.own.param_bytes for n in int8.root.walk())
    assert param_bytes == b.params == 25_557_032
    assert b.cost.weight_bytes * 4 == a.cost.weight_bytes
    assert int8.inputs[0].dtype == "int8"
    assert {op.dtype for n in int8.root.walk() for op in n.ops} == {"int8"}
    # the pooling's mean has no int8 kernel in PyTorch: said, not failed on
    (note,) = [n for n in int8.notes if n.startswith("analysed as int8")]
    assert "no int8 kernel for native_batch_norm, mean, counted as if it had one" in note


class PoolSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=1)).softmax(-1)


def test_int8_analysis_lists_each_op_without_an_int8_kernel_once() -> None:
    report = modelmeter.analyze(PoolSoftmax(), "2x5x4", dtype="int8")
    (note,) = [n for n in report.notes if n.startswith("analysed as int8")]
    listed = note.split("kernel for ")[1].split(", counted")[0].split(", ")
    assert "mean" in listed and "_softmax" in listed and "addmm" not in listed
    assert len(listed) == len(set(listed))
    # 2 rows x 4x3 = 24 MACs, as in fp32; activations: the 2x5x4 input is 40 bytes at int8
    assert report.total().cost.macs == 24
    assert report.inputs[0].dtype == "int8"


def test_int8_analysis_without_missing_kernels_adds_no_note() -> None:
    report = modelmeter.analyze(nn.Linear(4, 3), "2x4", dtype="int8")
    assert not [n for n in report.notes if n.startswith("analysed as int8")]
    # weights 4*3 + 3 = 15 params, one byte each
    assert sum(n.own.param_bytes for n in report.root.walk()) == 15


def test_real_mode_on_a_named_model_builds_it_with_real_weights() -> None:
    meta = modelmeter.analyze("torchvision:resnet18", mode="meta").total()
    real_report = modelmeter.analyze("torchvision:resnet18", mode="real")
    real = real_report.total()
    assert real_report.mode == "real"
    # torchvision's published 1.81 GMACs, the same on real tensors as on meta
    assert (real.cost.macs, real.cost.flops, real.params) == (
        meta.cost.macs,
        meta.cost.flops,
        meta.params,
    )
    assert real.cost.macs == 1_814_073_344


def test_a_shape_alone_keeps_a_named_models_input_dtype() -> None:
    report = modelmeter.analyze("hf:gpt2", "1x1024")
    assert [(i.shape, i.dtype) for i in report.inputs] == [((1, 1024), "int64")]


def test_with_defaults_takes_the_dtype_by_name_or_place() -> None:
    given = InputRequest.from_api(["1x16", "1x3:float16"], {"mask": "1x16"})
    out = given.with_defaults(None, {"input_ids": "1x8:int64", "mask": "1x8:bool"})
    # place 0 <- input_ids (the first default); place 1 has its own dtype; mask by name
    assert out.args == (ShapeInput((1, 16), "int64"), ShapeInput((1, 3), "float16"))
    assert out.kwargs == {"mask": ShapeInput((1, 16), "bool")}
    # a default without a dtype (torchvision's "1x3x224x224") leaves the given shape alone
    plain = InputRequest.from_api("1x3x8x8").with_defaults("1x3x224x224", None)
    assert plain.args == (ShapeInput((1, 3, 8, 8), None),)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["meta", "auto", "real"])
def test_a_half_precision_input_into_float32_weights_is_refused(half: str, mode: str) -> None:
    with pytest.raises(ModelRunError) as e:
        modelmeter.analyze(nn.Linear(4, 2), f"1x4:{half}", mode=mode)
    message = str(e.value)
    assert "\n" not in message
    if mode != "real":  # meta names the mix; a real run gives PyTorch's own words
        assert f"addmm mixes {half} and float32 inputs" in message
    # with --dtype both are one dtype: the analysis runs (1 row x 4x2 = 8 MACs)
    assert modelmeter.analyze(nn.Linear(4, 2), f"1x4:{half}", dtype="fp16").total().cost.macs == 8
