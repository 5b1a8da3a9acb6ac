"""Without --format, -o FILE writes the format its extension names (commands/options.py
``infer_format``). Before, ``analyze MODEL -o report.json`` wrote the rich table into
report.json, which ``diff`` and ``utilization`` then refused as "not a modelmeter JSON report"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import one_error, run

FACTORY = "import torch\n\ndef make():\n    return torch.nn.Linear(4, 3)\n"


@pytest.fixture()
def net(tmp_path: Path) -> str:
    (tmp_path / "net.py").write_text(FACTORY)
    return f"{tmp_path / 'net.py'}:make"


def test_the_extension_names_the_format(capsys, net: str, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "r.json"
    assert run(capsys, "analyze", net, "-i", "2x4", "-o", str(out))[0] == 0
    # Linear(4, 3) on 2 rows: 2 * 3 * 4 = 24 MACs
    assert json.loads(out.read_text())["total"]["macs"] == 24
    csv = tmp_path / "r.csv"
    assert run(capsys, "analyze", net, "-i", "2x4", "-o", str(csv))[0] == 0
    assert csv.read_text().startswith("name,type,depth,")
    toml = tmp_path / "a10.toml"
    assert run(capsys, "hardware", "show", "a10", "-o", str(toml))[0] == 0
    assert 'name = "a10"' in toml.read_text()


def test_an_explicit_format_and_other_names_keep_theirs(capsys, net: str, tmp_path: Path) -> None:  # noqa: ANN001
    md = tmp_path / "r.json"
    assert run(capsys, "analyze", net, "-i", "2x4", "-f", "md", "-o", str(md))[0] == 0
    assert md.read_text().startswith("# ")
    txt = tmp_path / "r.txt"
    assert run(capsys, "analyze", net, "-i", "2x4", "-o", str(txt))[0] == 0
    assert "╭" in txt.read_text()  # the table
    # an extension the command has no format for: its default (the table), as before
    tex = tmp_path / "r.toml"
    assert run(capsys, "analyze", net, "-i", "2x4", "-o", str(tex))[0] == 0
    assert "╭" in tex.read_text()


def test_an_option_the_inferred_format_refuses_is_one_error(capsys, net: str, tmp_path: Path) -> None:  # noqa: ANN001
    code, _, err = run(capsys, "analyze", net, "-i", "2x4", "--depth", "1", "-o", str(tmp_path / "r.json"))
    assert code == 2 and "--depth does not apply to -f json" in one_error(err)
    assert not (tmp_path / "r.json").exists()
