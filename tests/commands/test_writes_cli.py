"""Each command writes only what it was asked to: its outputs (through a temporary file
beside each, gone afterwards), and nothing in the model's folder changes (names, sizes,
modification times and bytes compared before and after)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cli_helpers import run
from external_models import matmul, save
from file_audit import audit

from modelmeter.render.formats import REPORT_FORMATS

FACTORY = "import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())\n"
CHIP = ["--peak", "1T", "--bandwidth", "1G"]

# (argv, outputs) with {model}, {net} (a file.py:FACTORY) and {out} (the output folder)
COMMANDS = [
    *[(["analyze", "{model}", "-f", f, "-o", f"{{out}}/r.{f}"], [f"r.{f}"]) for f in REPORT_FORMATS],
    (
        ["analyze", "{model}", *CHIP, "--plot", "{out}/roof.png", "--plot-breakdown", "{out}/t.png",
         "-o", "{out}/r.txt"],
        ["roof.png", "t.png", "r.txt"],
    ),
    (["analyze", "{net}:make", "-i", "2x4", "-o", "{out}/net.json", "-f", "json"], ["net.json"]),
    (["measure", "{model}", "--warmup", "1", "--repeats", "2", "-q", "-f", "json", "-o",
      "{out}/m.json"], ["m.json"]),
    (["measure", "{net}:make", "-i", "2x4", "--warmup", "1", "--repeats", "2", "-q", "-o",
      "{out}/m.txt"], ["m.txt"]),
    (["utilization", "{model}", *CHIP, "--latency", "1ms", "-o", "{out}/u.txt"], ["u.txt"]),
    (["hardware", "show", "a10", "-f", "toml", "-o", "{out}/a10.toml"], ["a10.toml"]),
    (["hardware", "list", "-o", "{out}/chips.txt"], ["chips.txt"]),
    (["ops", "-f", "md", "-o", "{out}/ops.md"], ["ops.md"]),
    # through the link out/link.json -> out/kept.json: the file it points to is written
    (["analyze", "{model}", "-f", "json", "-o", "{out}/link.json"], ["kept.json"]),
]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: size, modification time (ns) and SHA-256."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[os.fspath(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def _argv(argv: list[str], folder: Path) -> list[str]:
    net = folder / "net" / "net.py"
    fill = {"model": folder / "model" / "m.onnx", "net": net, "out": folder / "out"}
    return [a.format(**{k: os.fspath(v) for k, v in fill.items()}) for a in argv]


def _setup(folder: Path) -> Path:
    save(matmul, 2.0, folder / "model")
    (folder / "net").mkdir()
    (folder / "net" / "net.py").write_text(FACTORY)
    (folder / "out").mkdir()
    (folder / "out" / "kept.json").write_text("old")
    (folder / "out" / "link.json").symlink_to("kept.json")
    return folder


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every command once, unaudited: first-use caches of the libraries (matplotlib's font
    list) and lazy imports happen here."""
    folder = _setup(tmp_path_factory.mktemp("warm"))
    for argv, _ in COMMANDS:
        assert run_quiet(_argv(argv, folder)) == 0


def run_quiet(argv: list[str]) -> int:
    from modelmeter.cli import main

    return main(argv)


@pytest.mark.parametrize(
    ("argv", "outputs"), [pytest.param(a, o, id=f"{a[0]}-{o[0]}") for a, o in COMMANDS]
)
def test_only_the_outputs_are_written(tmp_path, capsys, warm, argv, outputs) -> None:
    pytest.importorskip("matplotlib")
    folder = _setup(tmp_path)
    inputs = {name: _snapshot(folder / name) for name in ("model", "net")}
    out = folder / "out"
    before = {p.name: p.is_symlink() for p in out.iterdir()}
    with audit() as opened:
        code, _, err = run(capsys, *_argv(argv, folder))
    assert code == 0, err
    wanted = {os.fspath(out / name) for name in outputs}
    # written: the outputs, or temporary files beside them that are gone now (and the process's
    # own kernel files: measure resets its peak-memory counter in /proc/self/clear_refs)
    for path in opened.written:
        if path.startswith(f"/proc/{os.getpid()}/"):
            continue
        assert path in wanted or (
            os.path.dirname(path) == os.fspath(out) and not os.path.exists(path)
        ), path
    renamed = [dst for event, *paths in opened.changed if event == "os.rename" for dst in paths[1:]]
    assert set(renamed) <= wanted
    after = {p.name: p.is_symlink() for p in out.iterdir()}
    assert after == {**before, **{name: False for name in outputs}}  # links stay links
    assert {name: _snapshot(folder / name) for name in ("model", "net")} == inputs
