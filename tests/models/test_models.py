"""Model specs: name resolution, suggestions, Python files with a factory, bare names, nested
list inputs, and building without weights."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import modelmeter  # noqa: E402
from modelmeter.errors import (  # noqa: E402
    MissingDependency,
    ModelmeterError,
    ModelNotFound,
    ModelRunError,
)
from modelmeter.models import LoadedModel, load  # noqa: E402
from modelmeter.models.building import build_meta, skip_init  # noqa: E402

# ---- torchvision --------------------------------------------------------------------------


def test_torchvision_name_is_case_insensitive_and_built_on_meta() -> None:
    loaded = load("torchvision:ResNet18")
    assert isinstance(loaded, LoadedModel)
    assert loaded.label == "torchvision:resnet18"
    assert loaded.inputs == "1x3x224x224"
    assert not loaded.model.training
    assert all(p.device.type == "meta" for p in loaded.model.parameters())
    # resnet18: the published 11,689,512 parameters
    assert sum(p.numel() for p in loaded.model.parameters()) == 11_689_512


def test_torchvision_published_architecture_and_size() -> None:
    inception = load("torchvision:inception_v3")
    assert inception.inputs == "1x3x299x299"
    googlenet = load("torchvision:googlenet").model
    assert googlenet.aux1 is None and googlenet.aux2 is None  # as with the published weights
    vit_h = load("torchvision:vit_h_14")
    assert vit_h.inputs == "1x3x518x518" and vit_h.model.image_size == 518


def test_builders_that_compute_while_building_still_build() -> None:
    # RegNet computes its block widths with tensors, which fails on meta: built on the CPU
    # with initialisation skipped, then moved to meta
    init_before = {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init)}
    model = load("torchvision:regnet_y_400mf").model
    assert all(p.device.type == "meta" for p in model.parameters())
    assert {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init)} == init_before


def test_analyze_by_name_uses_label_and_default_inputs() -> None:
    by_name = modelmeter.analyze("torchvision:squeezenet1_1")
    loaded = load("torchvision:squeezenet1_1")
    direct = modelmeter.analyze(loaded.model, loaded.inputs)
    assert by_name.model == "torchvision:squeezenet1_1"
    assert [i.shape for i in by_name.inputs] == [(1, 3, 224, 224)]
    assert by_name.total() == direct.total()


def test_unknown_torchvision_name_suggests_close_names() -> None:
    with pytest.raises(ModelNotFound) as info:
        load("torchvision:resnet5")
    message = str(info.value)
    assert message.startswith("unknown torchvision model 'resnet5'; did you mean ")
    assert "resnet50" in message and "\n" not in message


# ---- bare names, sources, onnx ------------------------------------------------------------


def test_bare_name_tries_torchvision_then_presets() -> None:
    assert load("resnet18").label == "torchvision:resnet18"
    assert load("gpt2").label.startswith("hf:gpt2")


def test_bare_unknown_name_lists_the_forms() -> None:
    with pytest.raises(ModelNotFound) as info:
        load("resnet5")
    message = str(info.value)
    assert "did you mean torchvision:resnet50" in message
    for form in ("torchvision:NAME", "timm:NAME", "hf:NAME_OR_CONFIG", "file.py:FACTORY"):
        assert form in message
    with pytest.raises(ModelNotFound) as info:
        load("qqqqqqqq")
    assert "did you mean" not in str(info.value) and "torchvision:NAME" in str(info.value)


def test_unknown_source_and_empty_names() -> None:
    with pytest.raises(ModelNotFound, match="unknown model source 'foo'"):
        load("foo:bar")
    with pytest.raises(ModelNotFound):
        load("   ")
    with pytest.raises(ModelNotFound):
        load("torchvision:")


def test_onnx_is_a_clear_error() -> None:
    # .onnx files go to the ONNX frontend (modelmeter.analyze routes them before load)
    with pytest.raises(ModelmeterError, match="is an ONNX file, not a PyTorch model"):
        load("some/model.onnx")


def test_missing_dependencies_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, spec in (("timm", "timm:resnet18"), ("transformers", "hf:gpt2")):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # makes `import module` fail
            with pytest.raises(MissingDependency, match="pip install"):
                load(spec)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torchvision", None)
        with pytest.raises(MissingDependency, match="pip install"):
            load("torchvision:resnet18")


# ---- timm ---------------------------------------------------------------------------------


def test_timm_model() -> None:
    pytest.importorskip("timm")
    loaded = load("timm:resnet18")
    assert loaded.label == "timm:resnet18"
    assert loaded.inputs == "1x3x224x224"
    assert all(p.device.type == "meta" for p in loaded.model.parameters())
    # the same architecture as torchvision's resnet18: 11,689,512 parameters
    assert sum(p.numel() for p in loaded.model.parameters()) == 11_689_512
    with pytest.raises(ModelNotFound, match="did you mean .*resnet50"):
        load("timm:resnet5O")


# ---- path/to/file.py:FACTORY --------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


MODEL_FILE = """
    import torch
    from helper import OUT

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, OUT)

        def forward(self, x, scale=1.0):
            return self.fc(x) * scale

    def make():
        return Net()

    def make_with_inputs():
        return Net(), "2x4"

    def make_with_kwargs():
        return Net(), ("2x4",), {"scale": 2.0}

    def broken():
        raise RuntimeError("no GPU here\\nsecond line")

    net = Net()
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    _write(tmp_path / "helper.py", "OUT = 3\n")  # a neighbour the model file imports
    return _write(tmp_path / "my_model.py", MODEL_FILE)


def test_file_factory_returning_a_module(model_file: Path) -> None:
    path_before = list(sys.path)
    loaded = load(f"{model_file}:make")
    assert sys.path == path_before  # the file's folder was on sys.path only while importing
    assert loaded.label == "my_model.py:make"
    assert loaded.inputs is None
    report = modelmeter.analyze(loaded.model, "2x4")
    # Linear(4, 3): 4*3 + 3 = 15 parameters; 2 rows x 4 inputs x 3 outputs = 24 MACs
    assert report.total().params == 15
    assert report.total().cost.macs == 24


def test_file_factory_with_inputs_and_kwargs(model_file: Path) -> None:
    report = modelmeter.analyze(f"{model_file}:make_with_inputs")
    assert report.model == "my_model.py:make_with_inputs"
    assert [i.shape for i in report.inputs] == [(2, 4)]
    assert report.total().cost.macs == 24
    loaded = load(f"{model_file}:make_with_kwargs")
    assert loaded.inputs == ("2x4",) and loaded.kwargs == {"scale": 2.0}
    assert (
        modelmeter.analyze(loaded.model, loaded.inputs, kwargs=loaded.kwargs).total().params == 15
    )


def test_file_naming_a_module_object(model_file: Path) -> None:
    loaded = load(f"{model_file}:net")
    assert isinstance(loaded.model, torch.nn.Module)


def test_file_errors(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="has no 'mkae'; did you mean make"):
        load(f"{model_file}:mkae")
    with pytest.raises(ModelRunError) as info:
        load(f"{model_file}:broken")
    assert str(info.value) == "my_model.py:broken() failed: RuntimeError: no GPU here"
    with pytest.raises(ModelNotFound, match="no such file"):
        load(f"{tmp_path / 'absent.py'}:make")
    with pytest.raises(ModelNotFound, match="FACTORY"):
        load(str(model_file))
    bad = _write(tmp_path / "bad_syntax.py", "def make(:\n")
    with pytest.raises(ModelRunError, match="importing bad_syntax.py failed: SyntaxError"):
        load(f"{bad}:make")
    plain = _write(tmp_path / "plain.py", "VALUE = 3\n")
    with pytest.raises(ModelmeterError, match="not a factory"):
        load(f"{plain}:VALUE")


# ---- nested list inputs (detection models take a list of images) -------------------------


def _square_each(images: list) -> list:
    assert isinstance(images, list)
    return [x @ x for x in images]


@pytest.mark.parametrize("mode", ["meta", "real"])
def test_list_argument_of_shapes(mode: str) -> None:
    report = modelmeter.analyze(_square_each, [["4x4", "2x2:float64"]], mode=mode)
    assert report.mode == mode
    assert [(i.shape, i.dtype) for i in report.inputs] == [((4, 4), "float32"), ((2, 2), "float64")]
    # (4x4)@(4x4): 4*4*4 = 64 MACs; (2x2)@(2x2): 8 MACs
    assert report.total().cost.macs == 72


def test_tuple_argument_stays_a_tuple() -> None:
    seen = []

    def f(pair: tuple) -> torch.Tensor:
        seen.append(type(pair))
        return pair[0] @ pair[1]

    report = modelmeter.analyze(f, [("3x5", "5x2")])
    assert seen == [tuple]
    assert report.total().cost.macs == 3 * 5 * 2


# ---- building helpers ---------------------------------------------------------------------


def test_skip_init_restores_initialisers_even_on_error() -> None:
    before = torch.nn.init.kaiming_uniform_
    with pytest.raises(RuntimeError), skip_init():
        assert torch.nn.init.kaiming_uniform_ is not before
        raise RuntimeError("boom")
    assert torch.nn.init.kaiming_uniform_ is before


def test_build_meta_falls_back_for_tensor_maths() -> None:
    class Computes(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = int(torch.tensor([3.0, 5.0]).sum().item())  # fails on meta
            self.fc = torch.nn.Linear(width, 2)

    model = build_meta(Computes)
    assert model.fc.weight.shape == (2, 8) and model.fc.weight.device.type == "meta"
