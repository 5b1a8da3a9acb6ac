"""Bad input: one clear line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from modelmeter.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_wrong_input_shape_names_the_module_and_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "analyze", "torchvision:resnet18", "--input", "1x4x64x64")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "module 'conv1' (Conv2d)" in err and "1x4x64x64" in err


def test_wrong_shape_deep_inside_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    # 3x64x64 runs through the convolutions but a 1x3x64 input breaks conv2d's rank check.
    code, err = _run(capsys, "analyze", "torchvision:resnet18", "--input", "3x64")
    assert code == 2 and "conv1" in err and "3x64" in err


def test_user_model_raising_on_meta_weights_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # noqa: ANN001
    src = tmp_path / "net.py"
    src.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
        "def build():\n"
        "    return Net()\n"
    )
    before = src.read_text()
    code, err = _run(capsys, "analyze", f"{src}:build", "--input", "2x5")
    assert code == 2 and "module 'fc' (Linear)" in err and "2x5" in err
    assert src.read_text() == before  # nothing the user owns is changed
    assert [p.name for p in tmp_path.iterdir()] == ["net.py"]  # not even a __pycache__
