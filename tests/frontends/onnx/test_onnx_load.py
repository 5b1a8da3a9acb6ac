"""Loading ONNX models: external data (sizes only, never the bytes), the model's folder as the
only place data may come from, in-memory protos left untouched, and binding input shapes and
symbolic dimensions."""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import analyze, init, model, vi  # noqa: E402

from modelmeter.errors import InputError  # noqa: E402

node = helper.make_node


def _mlp(k: int = 256, n: int = 512) -> onnx.ModelProto:
    """x (batch, k) @ W (k, n) + b (n), Relu."""
    rng = np.random.default_rng(0)
    w = onnx.numpy_helper.from_array(rng.random((k, n), dtype=np.float32), "w")
    b = onnx.numpy_helper.from_array(rng.random((n,), dtype=np.float32), "b")
    return model(
        [node("MatMul", ["x", "w"], ["h"]), node("Add", ["h", "b"], ["a"]),
         node("Relu", ["a"], ["y"])],
        [vi("x", ["batch", k])],
        [vi("y", None)],
        [w, b],
    )


def _save_external(m: onnx.ModelProto, folder: os.PathLike, location: str = "weights.bin") -> str:
    path = os.path.join(folder, "m.onnx")
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


def test_external_data_sizes_come_from_dims_and_are_never_read(tmp_path, monkeypatch) -> None:
    path = _save_external(_mlp(), tmp_path)
    data = os.path.realpath(tmp_path / "weights.bin")
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *a, **kw):  # noqa: ANN001, ANN202
        opened.append(os.path.realpath(file) if isinstance(file, (str, os.PathLike)) else "")
        return real_open(file, *a, **kw)

    def spy_os_open(file, *a, **kw):  # noqa: ANN001, ANN202
        opened.append(os.path.realpath(file))
        return real_os_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    r = analyze(path, dims={"batch": 2})
    monkeypatch.undo()
    assert data not in opened
    t = r.total()
    # W 256x512 + b 512 = 131,584 float32 parameters = 526,336 bytes
    assert (t.params, r.size_by_dtype()["native"]) == (131_584, 526_336)
    # MACs 2*256*512 = 262,144; FLOPs (2*256-1)*1024 + Add 1024 + Relu 1024 = 525,312
    assert (t.cost.macs, t.cost.flops) == (262_144, 525_312)


def test_missing_or_truncated_external_data(tmp_path) -> None:
    path = _save_external(_mlp(), tmp_path)
    data = tmp_path / "weights.bin"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size - 4)  # the last tensor (b) loses its last float
    with pytest.raises(InputError, match="missing external data: tensor 'b'.*truncated"):
        analyze(path, dims={"batch": 1})
    data.unlink()
    with pytest.raises(InputError, match="missing external data: tensor 'w'"):
        analyze(path, dims={"batch": 1})


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname"])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, location) -> None:
    m = _mlp(4, 4)
    (tmp_path / "outside.bin").write_bytes(b"\0" * 128)
    folder = tmp_path / "model"
    folder.mkdir()
    path = _save_external(m, folder)
    loaded = onnx.load(path, load_external_data=False)
    for t in loaded.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(loaded, path)
    with pytest.raises(InputError, match="outside the model's folder"):
        analyze(path, dims={"batch": 1})


def test_in_memory_model_is_not_modified() -> None:
    m = _mlp(8, 4)
    before = m.SerializeToString()
    r = analyze(m, "3x8")
    assert m.SerializeToString() == before
    assert r.total().cost.macs == 3 * 8 * 4 and r.model == "g"


def test_binding_inputs_dims_and_batch() -> None:
    # x (batch, 3, h, w) -> Conv 1x1 (4 out channels) ; mask (batch, 5) -> Relu
    m = model(
        [node("Conv", ["x", "w"], ["c"]), node("Relu", ["mask"], ["r"])],
        [vi("x", ["batch", 3, "h", "w"]), vi("mask", ["batch", 5])],
        [vi("c", None), vi("r", None)],
        [init("w", (4, 3, 1, 1))],
    )

    def macs(*args, **kw):  # noqa: ANN002, ANN003, ANN202
        return analyze(m, *args, **kw).total().cost.macs

    # MACs = batch*h*w*4 outputs * 3
    assert macs(("2x3x5x5", "2x5")) == 2 * 25 * 4 * 3
    assert macs(kwargs={"x": "1x3x4x4", "mask": "1x5"}) == 16 * 12
    assert macs(dims={"batch": 2, "h": 3, "w": 3}) == 2 * 9 * 12
    assert macs(dims={"h": 3, "w": 3}, batch=4) == 4 * 9 * 12
    r = analyze(m, dims={"batch": 2, "h": 3, "w": 3})
    assert [(i.name, i.shape, i.dtype) for i in r.inputs] == [
        ("x", (2, 3, 3, 3), "float32"), ("mask", (2, 5), "float32")
    ]
    errors = [
        (dict(inputs=("1x3x4x4", "1x5", "1x1")), "3 inputs given but the graph has 2"),
        (dict(kwargs={"msk": "1x5"}), "no input 'msk'; did you mean mask"),
        (dict(inputs="1x3x4x4", kwargs={"x": "1x3x4x4"}), "both by position and by name"),
        (dict(inputs="1x3x4"), "different rank"),
        (dict(inputs=("1x4x4x4", "1x5")), "fixed at export"),
        (dict(dims={"batch": 1, "height": 4}), "no symbolic dimension 'height'"),
        (dict(inputs=("2x3x4x4", "1x5")), "dimension 'batch' is 2 by one setting but 1"),
        (dict(inputs="1x3x4x4:int64"), "is float32 in the graph, not int64"),
        (dict(dims={"batch": 1, "h": 2}), "dimension 'w' of 'x' is not set: set it with --dim w"),
    ]
    for kw, message in errors:
        inputs = kw.pop("inputs", None)
        with pytest.raises(InputError, match=message):
            analyze(m, inputs, **kw)


def test_batch_applies_to_every_input_form() -> None:
    # x (batch, 8) @ W (8, 4): 8 * 4 = 32 MACs per sample
    m = _mlp(8, 4)
    array = np.zeros((1, 8), dtype=np.float32)
    for given in ("1x8", (1, 8), array, [array]):
        r = analyze(m, given, batch=6)
        assert r.total().cost.macs == 6 * 32 and r.inputs[0].shape == (6, 8)
    r = analyze(m, kwargs={"x": array}, batch=5)
    assert r.total().cost.macs == 5 * 32 and array.shape == (1, 8)
    # a graph input the user did not give takes the batch too (a shape without a dtype is
    # the graph's own dtype)
    assert analyze(m, batch=3).total().cost.macs == 3 * 32
    assert analyze(m, "2x8").inputs[0].dtype == "float32"


def test_an_array_gives_its_shape_and_dtype() -> None:
    m = _mlp(8, 4)
    assert analyze(m, np.zeros((3, 8), dtype=np.float32)).total().cost.macs == 3 * 32
    with pytest.raises(InputError, match="is float32 in the graph, not int64"):
        analyze(m, np.zeros((3, 8), dtype=np.int64))
    with pytest.raises(InputError, match="cannot use float as input 'x'"):
        analyze(m, 3.0)


def test_onnx_refuses_backward() -> None:
    with pytest.raises(InputError, match="an ONNX graph has no backward pass to trace"):
        analyze(_mlp(8, 4), "1x8", backward=True)


def test_fixed_batch_cannot_change() -> None:
    m = model([node("Relu", ["x"], ["y"])], [vi("x", [1, 4])], [vi("y", None)])
    assert analyze(m, batch=1).total().cost.flops == 4
    with pytest.raises(InputError, match="fixed first dimension 1"):
        analyze(m, batch=2)


def test_shapes_computed_from_constants() -> None:
    # Reshape's target shape is computed at run time from Shape/Gather/Concat: ONNX's own
    # inference with the batch left symbolic cannot tell it; once the batch is bound the
    # small shape subgraph is evaluated: x (2, 6) -> (2, 3, 2) -> Softmax over 2: 6 rows of 2,
    # 5*2 - 2 = 8 each = 48
    m = model(
        [
            node("Shape", ["x"], ["s"]),
            node("Gather", ["s", "zero"], ["b"], axis=0),
            node("Unsqueeze", ["b", "axes"], ["b1"]),
            node("Concat", ["b1", "tail"], ["shape"], axis=0),
            node("Reshape", ["x", "shape"], ["r"]),
            node("Softmax", ["r"], ["y"], axis=-1),
        ],
        [vi("x", ["n", 6])],
        [vi("y", None)],
        [init("zero", (), np.int64, 0), init("axes", (1,), np.int64, 0),
         onnx.numpy_helper.from_array(np.array([3, 2], dtype=np.int64), "tail")],
    )
    r = analyze(m, dims={"n": 2})
    assert r.total().cost.flops == 48
    assert list(r.by_operator()) == ["onnx.Softmax"]  # the shape arithmetic is folded


def test_dtype_of_integer_inputs_is_kept() -> None:
    m = model(
        [node("Gather", ["table", "ids"], ["y"])],
        [vi("ids", [1, 4], TensorProto.INT64)],
        [vi("y", None)],
        [init("table", (10, 8))],
    )
    r = analyze(m, dtype="fp16")
    # ids stay int64 (4*8 = 32 bytes); 4 rows of 8 fp16 = 64 bytes read and written
    c = r.total().cost
    assert (c.bytes_read, c.bytes_written, r.inputs[0].dtype) == (96, 64, "int64")


def test_pathlib_paths_are_analysed_as_onnx(tmp_path) -> None:
    import modelmeter

    path = tmp_path / "m.onnx"
    onnx.save_model(_mlp(8, 4), str(path))
    r = modelmeter.analyze(path, "3x8")
    # (3,8) @ (8,4): 3*8*4 = 96 MACs
    assert r.frontend == "onnx" and r.total().cost.macs == 96
