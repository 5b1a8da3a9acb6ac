"""What the user gives as inputs, parsed once into an InputRequest; ``batch`` applied to
every input form (shape strings, tuples of ints, tensors, nested lists, keyword inputs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import InputError
from modelmeter.frontends import frontend_for
from modelmeter.inputs import InputRequest, NestedInput, ShapeInput, ValueInput

# ---- InputRequest.from_api ------------------------------------------------------------------


def test_from_api_reads_every_input_form() -> None:
    t = torch.zeros(2, 3)
    r = InputRequest.from_api(
        ["1x3x8x8", (1, 4), torch.Size([2, 5]), t, None, 3, [t, "1x2:int64"]],
        {"mask": "1x8:bool"},
    )
    assert r.args == (
        ShapeInput((1, 3, 8, 8)),
        ShapeInput((1, 4)),
        ShapeInput((2, 5)),
        ValueInput(t),
        ValueInput(None),
        ValueInput(3),
        NestedInput((ValueInput(t), ShapeInput((1, 2), "int64")), list),
    )
    assert r.kwargs == {"mask": ShapeInput((1, 8), "bool")}
    assert r.given and r.batch is None and r.dtype is None and dict(r.dims) == {}


def test_from_api_bare_shape_is_one_input_and_a_tuple_of_shapes_several() -> None:
    assert InputRequest.from_api((1, 4)).args == (ShapeInput((1, 4)),)
    assert InputRequest.from_api("1x4").args == (ShapeInput((1, 4)),)
    assert InputRequest.from_api(((1, 4), (1, 5))).args == (ShapeInput((1, 4)), ShapeInput((1, 5)))
    assert InputRequest.from_api(None).args == () and not InputRequest.from_api(None).given


def test_from_api_a_list_of_ints_is_one_shape_and_a_list_of_shapes_several() -> None:
    # [1, 3, 224, 224] is the shape (1, 3, 224, 224), not four inputs 1, 3, 224 and 224
    assert InputRequest.from_api([1, 3, 224, 224]).args == (ShapeInput((1, 3, 224, 224)),)
    assert InputRequest.from_api([[1, 4], (1, 5)]).args == (ShapeInput((1, 4)), ShapeInput((1, 5)))
    t = torch.zeros(2, 3)
    assert InputRequest.from_api([t, t]).args == (ValueInput(t), ValueInput(t))


def test_analyze_reads_a_list_of_ints_as_a_tuple() -> None:
    model = nn.Linear(4, 3).eval()
    by_list = modelmeter.analyze(model, [2, 4])
    by_tuple = modelmeter.analyze(model, (2, 4))
    # one 2x4 input: 2 * 4 * 3 = 24 MACs either way
    assert by_list.total().macs == by_tuple.total().macs == 24
    assert [i.shape for i in by_list.inputs] == [(2, 4)]


def test_from_api_batch_dims_and_dtype() -> None:
    r = InputRequest.from_api(
        ["1x3x8x8:fp16", (2, 4)], {"ids": "1x128:int64"}, batch=8, dims={"seq": 16}, dtype="bf16"
    )
    # every shape's first dimension becomes 8; the dtype is canonical
    assert r.args == (ShapeInput((8, 3, 8, 8), "float16"), ShapeInput((8, 4)))
    assert r.kwargs == {"ids": ShapeInput((8, 128), "int64")}
    assert (r.batch, dict(r.dims), r.dtype) == (8, {"seq": 16}, "bfloat16")


def test_from_api_keeps_a_request_as_given() -> None:
    r = InputRequest.from_api("1x4", batch=2)
    assert InputRequest.from_api(r) is r
    with pytest.raises(InputError, match="in the InputRequest itself"):
        InputRequest.from_api(r, batch=3)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(inputs=(1, -4)), "negative dimension"),
        (dict(inputs=object()), "cannot use object as a model input"),
        (dict(inputs="1xfoo"), "1xfoo"),
        (dict(inputs="1x4", batch=0), "batch must be a whole number >= 1"),
        (dict(inputs="1x4", batch=True), "batch must be a whole number >= 1"),
        (dict(inputs="1x4", batch=2.0), "batch must be a whole number >= 1"),
        (dict(inputs="1x4", dims={"seq": 0}), "dimension 'seq' must be a whole number"),
        (dict(inputs="1x4", dtype="float7"), "float7"),
    ],
)
def test_from_api_errors(kw: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        InputRequest.from_api(**kw)


# ---- InputRequest.from_cli ------------------------------------------------------------------


def test_a_shape_takes_one_separator() -> None:
    assert InputRequest.from_cli(["1,3,8,8", "2×4"]).args == (
        ShapeInput((1, 3, 8, 8)), ShapeInput((2, 4))
    )


def test_from_cli_reads_positional_and_named_inputs() -> None:
    r = InputRequest.from_cli(
        ["1x3x8x8", "mask=1x8:bool", "input.1=2x4"], batch=4, dims=["seq=128"], dtype="fp16"
    )
    assert r.args == (ShapeInput((4, 3, 8, 8)),)
    assert r.kwargs == {"mask": ShapeInput((4, 8), "bool"), "input.1": ShapeInput((4, 4))}
    assert (r.batch, dict(r.dims), r.dtype) == (4, {"seq": 128}, "float16")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(inputs=["=1x4"]), "NAME=SHAPE needs an input name"),
        (dict(inputs=["1x=1x4"]), "NAME=SHAPE needs an input name"),
        (dict(inputs=["a=1x4", "a=1x5"]), "input 'a' is given twice"),
        (dict(inputs=["1x4x"]), "1x4x"),
        (dict(dims=["seq"]), "malformed --dim 'seq'"),
        (dict(dims=["seq=0"]), "malformed --dim 'seq=0'"),
        (dict(dims=["seq=x"]), "malformed --dim"),
        (dict(batch=-1), "batch must be a whole number >= 1"),
        (dict(dtype="int3"), "int3"),
        # two shapes joined by a comma were read as one 6-D shape, 1x2x3x1x2x3
        (dict(inputs=["1x2x3,1x2x3"]), "both 'x' and ','"),
        (dict(inputs=["h=1x2, 3"]), "both 'x' and ','"),
    ],
)
def test_from_cli_errors(kw: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        InputRequest.from_cli(**kw)


def test_with_defaults_applies_only_when_nothing_was_given() -> None:
    asked = InputRequest.from_api(batch=4)
    r = asked.with_defaults(["1x3x8x8"], {"mask": "1x8"})
    assert r.args == (ShapeInput((4, 3, 8, 8)),) and r.kwargs == {"mask": ShapeInput((4, 8))}
    given = InputRequest.from_api("2x2")
    assert given.with_defaults(["1x3x8x8"], None) == given  # given inputs stay (dtype aside)


def test_an_input_the_model_takes_but_does_not_default_gets_its_known_dtype() -> None:
    # hf: models default only input_ids; before, attention_mask=2x64 became float32
    given = InputRequest.from_cli(["input_ids=2x64", "attention_mask=2x64", "x=2x3:fp16"])
    r = given.with_defaults(None, {"input_ids": "1x128:int64"}, {"attention_mask": "int64",
                                                                  "x": "int64"})  # fmt: skip
    assert r.kwargs == {
        "input_ids": ShapeInput((2, 64), "int64"),
        "attention_mask": ShapeInput((2, 64), "int64"),
        "x": ShapeInput((2, 3), "float16"),  # a dtype given stays
    }
    # nothing given: the known dtypes add no input
    r = InputRequest.from_api().with_defaults(None, {"input_ids": "1x8:int64"}, {"attention_mask": "int64"})
    assert r.kwargs == {"input_ids": ShapeInput((1, 8), "int64")}


def test_hf_attention_mask_shape_is_int64() -> None:
    report = modelmeter.analyze("hf:gpt2", kwargs={"input_ids": "1x16", "attention_mask": "1x16"})
    assert [(i.name, i.dtype) for i in report.inputs] == [
        ("input_ids", "int64"), ("attention_mask", "int64")
    ]


# ---- batch on every input form -------------------------------------------------------------

# Linear(4, 2): per sample 4 * 2 = 8 MACs, so batch 8 -> 8 * 8 = 64 MACs.
PER_SAMPLE = 4 * 2


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(4, 2)


@pytest.mark.parametrize("mode", ["meta", "real"])
@pytest.mark.parametrize(
    "given",
    [torch.randn(1, 4), torch.randn(3, 4), (1, 4), "1x4", torch.Size([1, 4])],
    ids=["tensor", "tensor-3-rows", "tuple", "string", "size"],
)
def test_batch_applies_to_every_input_form(given, mode: str) -> None:
    r = modelmeter.analyze(_linear(), given, batch=8, mode=mode)
    assert r.total().cost.macs == 8 * PER_SAMPLE == 64
    assert [s.shape for s in r.inputs] == [(8, 4)]


class _TakesADict(nn.Module):
    """forward(batch: dict) as many models take their inputs (fvcore's trace cannot)."""

    def __init__(self) -> None:
        super().__init__()
        self.image, self.text = nn.Linear(4, 2), nn.Embedding(10, 2)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.image(batch["image"]) + self.text(batch["ids"]).sum(1)


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_a_dict_argument_holds_named_inputs_each_batched(mode: str) -> None:
    # Before: "cannot use dict as a model input". Linear(4, 2) on 3 rows: 3 * 8 = 24 MACs;
    # the embedding lookup and its sum have none.
    given = {"image": "1x4", "ids": torch.zeros(1, 5, dtype=torch.long)}
    r = modelmeter.analyze(_TakesADict(), (given,), batch=3, mode=mode)
    assert r.total().cost.macs == 3 * PER_SAMPLE == 24
    assert [(s.shape, s.dtype) for s in r.inputs] == [((3, 4), "float32"), ((3, 5), "int64")]
    with pytest.raises(InputError, match="cannot use dict"):
        modelmeter.analyze(_TakesADict(), ({1: "1x4"},))  # keys name the items
    with pytest.raises(InputError, match="ambiguous: give keyword inputs as kwargs="):
        modelmeter.analyze(_TakesADict(), given)  # model(**given) or model(given)?


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_batch_applies_to_keyword_inputs(mode: str) -> None:
    model = _linear()
    for given in (torch.randn(1, 4), "1x4", (2, 4)):
        r = modelmeter.analyze(model, kwargs={"input": given}, batch=3, mode=mode)
        assert r.total().cost.macs == 3 * PER_SAMPLE
        assert [(s.shape, s.name) for s in r.inputs] == [((3, 4), "input")]


class _EachImage(nn.Module):
    """A list of inputs (as detection models take), each through one Linear(4, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.fc(x) for x in xs]


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_batch_reaches_tensors_nested_in_tuples(mode: str) -> None:
    xs = (torch.randn(1, 4), torch.randn(2, 4), "1x4")
    r = modelmeter.analyze(_EachImage(), (xs,), batch=5, mode=mode)
    # a tuple holds several inputs: each gets 5 rows, 3 * 5 * 8 MACs
    assert r.total().cost.macs == 3 * 5 * PER_SAMPLE
    assert [s.shape for s in r.inputs] == [(5, 4)] * 3
    assert xs[0].shape == (1, 4) and xs[1].shape == (2, 4)


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_batch_sets_the_length_of_a_list_of_samples(mode: str) -> None:
    xs = [torch.randn(1, 4), torch.randn(2, 4), "1x4"]
    r = modelmeter.analyze(_EachImage(), (xs,), batch=5, mode=mode)
    # a list is a batch of samples: 5 items, the given ones repeated cyclically and each
    # kept as given: rows 1, 2, 1, 1, 2 = 7 rows of 8 MACs
    assert r.total().cost.macs == (1 + 2 + 1 + 1 + 2) * PER_SAMPLE
    assert [s.shape for s in r.inputs] == [(1, 4), (2, 4), (1, 4), (1, 4), (2, 4)]
    assert len(xs) == 3


def test_batch_leaves_the_given_tensor_unchanged_and_repeats_its_rows() -> None:
    x = torch.arange(12.0).reshape(3, 4)
    before = x.clone()
    seen: list[torch.Tensor] = []

    def double(t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return t * 2

    r = modelmeter.analyze(double, x, batch=7, mode="real")
    assert [s.shape for s in r.inputs] == [(7, 4)]
    assert torch.equal(x, before) and x.shape == (3, 4)
    # rows 0, 1, 2, 0, 1, 2, 0 of the given tensor, in a copy
    assert torch.equal(seen[0], before[[0, 1, 2, 0, 1, 2, 0]])
    assert seen[0].data_ptr() != x.data_ptr()


def test_batch_leaves_scalars_and_plain_values_alone() -> None:
    def scale(x: torch.Tensor, s: torch.Tensor, factor: float) -> torch.Tensor:
        return x * s * factor

    r = modelmeter.analyze(scale, (torch.randn(1, 4), torch.tensor(2.0), 3.0), batch=6)
    assert [s.shape for s in r.inputs] == [(6, 4), (), ()]


@pytest.mark.parametrize("given", [3.0, torch.tensor(1.0), (None, True)])
def test_batch_refused_when_no_input_has_a_first_dimension(given) -> None:
    with pytest.raises(InputError, match="batch 2 given but no input has a first dimension"):
        modelmeter.analyze(lambda *a: a[0], given, batch=2)


def test_batch_of_a_named_models_default_inputs() -> None:
    r = modelmeter.analyze("torchvision:resnet18", batch=2)
    assert r.inputs[0].shape == (2, 3, 224, 224)


def test_an_input_request_is_analysed_as_given() -> None:
    request = InputRequest.from_cli(["1x4"], batch=8, dtype="fp16")
    r = modelmeter.analyze(_linear(), request)
    assert r.total().cost.macs == 64 and r.inputs[0].dtype == "float16"


def test_torch_models_refuse_dims() -> None:
    with pytest.raises(InputError, match="only applies to ONNX models"):
        modelmeter.analyze(_linear(), "1x4", dims={"seq": 2})


# ---- choosing the frontend -----------------------------------------------------------------


def test_frontend_for_each_kind_of_model(tmp_path) -> None:
    class ModelProto:  # recognised by its type's name: onnx is not imported to check
        pass

    assert frontend_for("model.onnx").name == "onnx"
    assert frontend_for(tmp_path / "MODEL.ONNX").name == "onnx"
    assert frontend_for(ModelProto()).name == "onnx"
    assert frontend_for(_linear()).name == "torch"
    assert frontend_for(torch.relu).name == "torch"
    assert frontend_for("torchvision:resnet18").name == "torch"
    with pytest.raises(InputError, match="cannot analyse a int"):
        frontend_for(3)


def test_choosing_a_frontend_imports_neither_torch_nor_onnx() -> None:
    code = (
        "import sys; from modelmeter.frontends import frontend_for; "
        "assert frontend_for('m.onnx').name == 'onnx'; "
        "assert frontend_for('hf:gpt2').name == 'torch'; "
        "assert 'onnx' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_measure_times_and_analyses_the_batched_tensor() -> None:
    x = torch.randn(1, 4)
    r = modelmeter.measure(_linear(), x, batch=8, warmup=0, repeats=1)
    assert (r.macs, r.batch) == (64, 8) and x.shape == (1, 4)
