"""What ``-o`` and the plot options may write: never an input of the command (the model, every
file it refers to, a hardware file, a report), never another output of the same command, and
never a device, FIFO or stream replaced by a regular file (those are written in place)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cli_helpers import one_error, run
from external_models import save, weights

import modelmeter.cli
import modelmeter.usecases.analyze
import modelmeter.usecases.measure

CHIP = Path(modelmeter.cli.__file__).parent / "hardware" / "specs" / "a10.toml"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A MatMul whose weights live in ``data.bin`` beside it."""
    return save(weights, 2.0, tmp_path / "model")


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The use cases the commands call, replaced by recorders: a refusal comes before them."""
    calls: list[str] = []

    def record(name: str):  # noqa: ANN202
        def fake(*args: object, **kw: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} ran")

        return fake

    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", record("analyze"))
    monkeypatch.setattr(modelmeter.usecases.measure, "measure", record("measure"))
    return calls


def _content(p: Path) -> bytes | str | None:
    if p.is_symlink():
        return os.readlink(p)
    return p.read_bytes() if p.is_file() else None


def _listing(folder: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Every entry of ``folder`` (not followed): its mode and its bytes or link target."""
    return {p.name: (p.lstat().st_mode, _content(p)) for p in sorted(folder.iterdir())}


def _refused(capsys, folder: Path, work: list[str], *argv: str) -> str:  # noqa: ANN001
    before = _listing(folder)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and work == []
    assert _listing(folder) == before
    return one_error(err)


def test_the_models_external_data_is_never_an_output(tmp_path, model, capsys, work) -> None:
    data = model.parent / "data.bin"
    os.link(data, tmp_path / "hard.bin")
    (tmp_path / "soft.bin").symlink_to(data)
    for target in (data, tmp_path / "hard.bin", tmp_path / "soft.bin"):
        line = _refused(
            capsys, model.parent, work, "analyze", os.fspath(model), "-o", os.fspath(target)
        )
        assert "refusing to write -o" in line and "it is an input" in line


def test_a_factory_file_is_never_an_output(tmp_path, capsys, work) -> None:
    net = tmp_path / "net.py"
    net.write_text("import torch\n\ndef make():\n    return torch.nn.Linear(4, 2)\n")
    line = _refused(
        capsys, tmp_path, work, "analyze", f"{net}:make", "-i", "1x4", "-o", os.fspath(net)
    )
    assert "refusing to write" in line


def test_a_hardware_file_is_never_an_output(tmp_path, model, capsys, work) -> None:
    chip = tmp_path / "chip.toml"
    chip.write_bytes(CHIP.read_bytes())
    for argv in (
        ["analyze", os.fspath(model), "--hardware", os.fspath(chip)],
        ["utilization", os.fspath(model), "--hardware", os.fspath(chip), "--latency", "1ms"],
        ["hardware", "show", os.fspath(chip)],
    ):
        line = _refused(capsys, tmp_path, work, *argv, "-o", os.fspath(chip))
        assert "it is an input" in line and "chip.toml" in line


def test_a_report_read_by_utilization_is_never_an_output(tmp_path, capsys, work) -> None:
    report = tmp_path / "r.json"
    report.write_text("{}")
    argv = ["utilization", os.fspath(report), "--peak", "1T", "--bandwidth", "1G", "--latency",
            "1ms", "-o", os.fspath(report)]  # fmt: skip
    assert "refusing to write" in _refused(capsys, tmp_path, work, *argv)


@pytest.mark.parametrize(
    "argv",
    [
        [
            "analyze",
            "{model}",
            "--peak",
            "1T",
            "--bandwidth",
            "1G",
            "--plot",
            "{out}",
            "-o",
            "{out}",
        ],
        [
            "analyze",
            "{model}",
            "--peak",
            "1T",
            "--bandwidth",
            "1G",
            "--plot",
            "{out}",
            "--plot-breakdown",
            "{out}",
        ],
        ["measure", "{model}", "--plot-classes", "{out}", "-o", "{out}"],
    ],
    ids=["plot=-o", "plot=plot-breakdown", "plot-classes=-o"],
)
def test_two_outputs_never_name_one_file(tmp_path, model, capsys, work, argv) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "same.png"
    filled = [a.format(model=model, out=out) for a in argv]
    line = _refused(capsys, tmp_path, work, *filled)
    assert "name the same file" in line and not out.exists()


def test_a_fifo_stays_a_fifo_and_gets_the_report(tmp_path, model, capsys) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open does not block
    try:
        code, _, err = run(capsys, "analyze", os.fspath(model), "-f", "json", "-o", os.fspath(fifo))
        got = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got.startswith(b"{") and b'"model": "m.onnx"' in got
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "report.fifo"]


def test_a_link_to_a_file_stays_a_link(tmp_path, model, capsys) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    code, _, err = run(capsys, "analyze", os.fspath(model), "-f", "json", "-o", os.fspath(link))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == os.fspath(real)
    assert real.read_text().startswith("{")


def test_a_link_to_nothing_is_refused(tmp_path, model, capsys, work) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "missing.json")
    line = _refused(capsys, tmp_path, work, "analyze", os.fspath(model), "-o", os.fspath(link))
    assert "does not exist" in line and not (tmp_path / "missing.json").exists()


def _in_place_writes() -> bool:
    """Only with the in-place writer is ``-o /dev/null`` safe to try (the old writer renamed
    a temporary file over the target: over the system's /dev/null, as root)."""
    try:
        from modelmeter.files import in_place
    except ImportError:
        return False
    return in_place("/dev/null") and in_place("/dev/stdout")


@pytest.mark.skipif(not _in_place_writes(), reason="outputs are not written in place")
def test_dev_null_stays_a_character_device(model, capsys) -> None:
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    code, _, err = run(capsys, "analyze", os.fspath(model), "-o", "/dev/null")
    after = os.stat("/dev/null")
    assert code == 0, err
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == (
        before.st_ino,
        before.st_rdev,
        before.st_mode,
    )


@pytest.mark.skipif(not _in_place_writes(), reason="outputs are not written in place")
def test_dev_stdout_is_written_through(model, capfd) -> None:
    link = os.readlink("/dev/stdout")
    code = modelmeter.cli.main(["analyze", os.fspath(model), "-f", "json", "-o", "/dev/stdout"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert os.readlink("/dev/stdout") == link
    assert out.startswith("{") and '"model": "m.onnx"' in out
