"""``modelmeter train --plot FILE``: memory and time against the devices, from one trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import one_error, run


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_plot_written(capsys: pytest.CaptureFixture[str], mlp: str, tmp_path: Path,
                      ext: str) -> None:  # fmt: skip
    pytest.importorskip("matplotlib")
    path = tmp_path / f"d.{ext}"
    code, out, err = run(capsys, "train", mlp, "-i", "8x64", "--zero", "3", "--devices", "4",
                         "--hardware", "h100-sxm", "--plot", str(path))  # fmt: skip
    assert code == 0, err
    assert path.stat().st_size > 1000 and f"wrote {path}" in err
    # the table is the one at --devices 4: ZeRO-3 weights 49,792 / 4 = 12,448 bytes
    assert "one device of the plan: 4 devices, ZeRO-3" in out and "weights 12.45 KB" in out


def test_plot_errors(capsys: pytest.CaptureFixture[str], mlp: str, tmp_path: Path) -> None:
    png = str(tmp_path / "d.png")
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", "--plot", png)
    assert code == 2 and "need --hardware" in one_error(err)
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", "--hardware", "h100-sxm",
                       "--plot", str(tmp_path / "d.txt"))  # fmt: skip
    assert code == 2 and ".png" in one_error(err)
    code, _, err = run(capsys, "train", mlp, "-i", "8x64", "--hardware", "h100-sxm",
                       "--plot", png, "--max-batch")  # fmt: skip
    assert code == 2 and "not both" in one_error(err)
    assert not Path(png).exists()
