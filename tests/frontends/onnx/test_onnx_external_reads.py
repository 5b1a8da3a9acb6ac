"""Every read of an ONNX model's external data (initializers, tensor attributes, tensors in
If/Loop bodies, sparse constants) resolves against the model's folder, never the current
directory, and a location escaping that folder is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from cli_helpers import one_error, run
from external_models import BUILDERS, fill_value, save
from file_audit import audit, install_roots, outside


def _report(capsys: pytest.CaptureFixture[str], path: Path) -> dict:
    code, out, err = run(capsys, "analyze", os.fspath(path), "-f", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", ["fill_value", "constant_value"])
def test_attribute_data_comes_from_the_models_folder(tmp_path, monkeypatch, capsys, name) -> None:
    # The model's file holds the fill value 2.0, a same-named file in the current directory
    # 5.0. Expand's output has shape [fill]*4: 2*2*2*2 = 16 floats = 64 bytes written (the
    # decoy would give 5**4 * 4 = 2500).
    model = save(BUILDERS[name], 2.0, tmp_path / "model")
    save(BUILDERS[name], 5.0, tmp_path / "decoy")
    monkeypatch.chdir(tmp_path / "decoy")
    total = _report(capsys, model)["total"]
    assert total["bytes_written"] == 2 * 2 * 2 * 2 * 4


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_report_is_the_same_from_any_directory(tmp_path, monkeypatch, capsys, name) -> None:
    model = save(BUILDERS[name], 2.0, tmp_path / "model")
    save(BUILDERS[name], 5.0, tmp_path / "decoy")
    monkeypatch.chdir(tmp_path / "model")
    here = _report(capsys, model)
    monkeypatch.chdir(tmp_path / "decoy")
    assert _report(capsys, model) == here


def _escaping(tmp_path: Path) -> dict[str, str]:
    """Locations that leave the model's folder: '..', an absolute path, a symlink inside the
    folder that points outside."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 64)
    return {"dotdot": "../secret.bin", "absolute": os.fspath(secret), "symlink": "link.bin"}


@pytest.mark.parametrize("name", ["fill_value", "in_if", "in_loop", "weights", "sparse_constant"])
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_locations_escaping_the_folder_are_refused(tmp_path, capsys, name, kind) -> None:
    location = _escaping(tmp_path)[kind]
    folder = tmp_path / "model"
    model = save(BUILDERS[name], 2.0, folder, location=location)
    if kind == "symlink":
        (folder / "link.bin").unlink()
        (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    with audit() as opened:
        code, _, err = run(capsys, "analyze", os.fspath(model))
    assert code == 2
    assert "outside the model's folder" in one_error(err)
    assert os.fspath(tmp_path / "secret.bin") not in opened.read


def test_no_file_outside_the_models_folder_is_opened(tmp_path, monkeypatch, capsys) -> None:
    # Every builder, run from a folder holding same-named decoy files: the only files opened
    # are in the model's folder or in Python's install (imports).
    models = {name: save(b, 2.0, tmp_path / name / "model") for name, b in BUILDERS.items()}
    for name, b in BUILDERS.items():
        save(b, 5.0, tmp_path / name / "decoy")
    save(fill_value, 2.0, tmp_path / "warm")
    run(capsys, "analyze", os.fspath(tmp_path / "warm" / "m.onnx"))  # imports happen here
    roots = install_roots()
    for name, model in models.items():
        monkeypatch.chdir(tmp_path / name / "decoy")
        with audit() as opened:
            code, _, err = run(capsys, "analyze", os.fspath(model), "-f", "json")
        assert code == 0, err
        assert outside(opened.read + opened.written, [*roots, os.fspath(model.parent)]) == []
        # the small external tensors are read, from the model's folder (matmul's only
        # external tensor is a weight: never read)
        read = os.fspath(model.parent / "data.bin") in opened.read
        assert read == (name != "matmul")


# ---- generated locations ----------------------------------------------------------------------

_SEGMENTS = ["..", ".", "sub", "link_in", "link_out", "outside"]


def _tree(root: Path) -> tuple[Path, Path]:
    """root/model/{data.bin, sub/data.bin, link_in -> sub, link_out -> ../outside} and a decoy
    root/outside/{data.bin, sub/data.bin} (the current directory while analysing)."""
    model, decoy = root / "model", root / "outside"
    for folder in (model / "sub", decoy / "sub"):
        folder.mkdir(parents=True)
    (model / "link_in").symlink_to("sub")
    (model / "link_out").symlink_to(decoy)
    return model, decoy


def _expected_inside(model: Path, location: str) -> bool:
    """The rule: a relative location whose real path is a file in the model's folder."""
    real = os.path.realpath(os.path.join(model, location))
    inside = os.path.commonpath([real, os.path.realpath(model)]) == os.path.realpath(model)
    return not os.path.isabs(location) and inside and os.path.isfile(real)


def test_generated_locations_are_read_inside_the_folder_or_refused(tmp_path, monkeypatch, capsys):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    model, decoy = _tree(tmp_path)
    roots = install_roots()
    monkeypatch.chdir(decoy)

    @hypothesis.settings(max_examples=30, deadline=None, database=None)
    @hypothesis.given(
        build=st.sampled_from(sorted(BUILDERS)),
        segments=st.lists(st.sampled_from(_SEGMENTS), max_size=3),
        absolute=st.sampled_from(["", os.fspath(model), os.fspath(tmp_path)]),
    )
    def check(build: str, segments: list[str], absolute: str) -> None:
        location = os.path.join(absolute, *segments, "data.bin")
        good, bad = {}, {}
        m = BUILDERS[build](2.0, location, good)
        BUILDERS[build](5.0, location, bad)
        for folder in (model, model / "sub"):
            (folder / "data.bin").write_bytes(good[location])
        for folder in (decoy, decoy / "sub"):
            (folder / "data.bin").write_bytes(bad[location])
        onnx.save_model(m, os.fspath(model / "m.onnx"))
        with audit() as opened:
            code, out, err = run(capsys, "analyze", os.fspath(model / "m.onnx"), "-f", "json")
        assert outside(opened.read, [*roots, os.fspath(model)]) == []
        if _expected_inside(model, location):
            assert code == 0, err
            if build in ("fill_value", "constant_value"):  # 2*2*2*2 floats, not 5**4
                assert json.loads(out)["total"]["bytes_written"] == 2 * 2 * 2 * 2 * 4
        else:
            assert code == 2 and one_error(err)

    check()
