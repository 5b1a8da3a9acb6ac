"""ONNX models whose tensors (initializers, tensor attributes, tensors inside If/Loop bodies,
sparse constants) are stored in external files, for the tests that check every read stays in
the model's folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def external(name: str, array: np.ndarray, location: str, files: dict[str, bytes]) -> Any:
    """A tensor whose bytes are stored in ``files[location]`` (appended; offset and length
    recorded)."""
    t = numpy_helper.from_array(array, name)
    data = files.get(location, b"")
    entries = {"location": location, "offset": str(len(data)), "length": str(len(t.raw_data))}
    files[location] = data + t.raw_data
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        t.external_data.add(key=key, value=value)
    return t


def _fill_expand(prefix: str, value: Any) -> list[onnx.NodeProto]:
    """``y = Expand(x, Cast(ConstantOfShape([4], value)))``: the output's shape is the fill
    value repeated four times, so the report shows which bytes were read."""
    return [
        helper.make_node(
            "Constant", [], [f"{prefix}s"], value=numpy_helper.from_array(np.array([4], np.int64))
        ),
        helper.make_node("ConstantOfShape", [f"{prefix}s"], [f"{prefix}c"], value=value),
        helper.make_node("Cast", [f"{prefix}c"], [f"{prefix}ci"], to=I64),
        helper.make_node("Expand", ["x", f"{prefix}ci"], [f"{prefix}y"]),
    ]


def _model(nodes: list, outputs: list[str], inits: tuple = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, [1])],
        [helper.make_tensor_value_info(o, F, None) for o in outputs],
        initializer=list(inits),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def fill_value(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """ConstantOfShape whose ``value`` attribute is external."""
    value = external("v", np.array([fill], np.float32), location, files)
    return _model(_fill_expand("", value), ["y"])


def constant_value(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """A Constant whose ``value`` (the target shape, as floats) is external."""
    value = external("v", np.full(4, fill, np.float32), location, files)
    nodes = [
        helper.make_node("Constant", [], ["c"], value=value),
        helper.make_node("Cast", ["c"], ["ci"], to=I64),
        helper.make_node("Expand", ["x", "ci"], ["y"]),
    ]
    return _model(nodes, ["y"])


def in_if(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """The ConstantOfShape inside both branches of an If."""

    def branch(tag: str) -> onnx.GraphProto:
        value = external(f"v{tag}", np.array([fill], np.float32), location, files)
        nodes = _fill_expand(tag, value)
        return helper.make_graph(
            nodes, tag, [], [helper.make_tensor_value_info(f"{tag}y", F, None)]
        )

    nodes = [
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["cond"], ["y"], then_branch=branch("t"), else_branch=branch("e")),
    ]
    return _model(nodes, ["y"])


def in_loop(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """The ConstantOfShape inside a Loop body (two iterations)."""
    value = external("v", np.array([fill], np.float32), location, files)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cin"], ["cout"]),
            *_fill_expand("b", value),
            helper.make_node("Add", ["acc", "x"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", I64, []),
            helper.make_tensor_value_info("cin", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc", F, [1]),
        ],
        [
            helper.make_tensor_value_info("cout", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", F, [1]),
            helper.make_tensor_value_info("by", F, None),
        ],
    )
    nodes = [
        helper.make_node("Constant", [], ["n"], value=numpy_helper.from_array(np.array(2))),
        helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("Loop", ["n", "t", "x"], ["acc", "ys"], body=body),
    ]
    return _model(nodes, ["acc", "ys"])


def weights(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """External initializers: a MatMul's weights (large, never read) and an int64 shape
    (small, read for shape inference)."""
    w = external("w", np.full((1, 300), fill, np.float32), location, files)
    shape = external("shape", np.array([int(fill), 150], np.int64), location, files)
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["x2"]),
        helper.make_node("MatMul", ["x2", "w"], ["h"]),
        helper.make_node("Reshape", ["h", "shape"], ["y"]),
    ]
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    return _model(nodes, ["y"], (w, shape, axes))


def matmul(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """A MatMul whose weights are external (onnxruntime runs it: no external shape)."""
    w = external("w", np.full((1, 300), fill, np.float32), location, files)
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["x2"]),
        helper.make_node("MatMul", ["x2", "w"], ["y"]),
    ]
    return _model(nodes, ["y"], (w, axes))


def sparse_constant(fill: float, location: str, files: dict[str, bytes]) -> onnx.ModelProto:
    """A Constant whose ``sparse_value`` has external values and indices."""
    values = external("sv", np.array([fill], np.float32), location, files)
    indices = external("si", np.array([1], np.int64), location, files)
    sparse = helper.make_sparse_tensor(values, indices, [4])
    nodes = [
        helper.make_node("Constant", [], ["c"], sparse_value=sparse),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    return _model(nodes, ["y"])


BUILDERS: dict[str, Callable[[float, str, dict[str, bytes]], onnx.ModelProto]] = {
    "fill_value": fill_value,
    "constant_value": constant_value,
    "in_if": in_if,
    "in_loop": in_loop,
    "weights": weights,
    "matmul": matmul,
    "sparse_constant": sparse_constant,
}


def save(build: Callable, fill: float, folder: Path, location: str = "data.bin") -> Path:
    """Build, write the model and its data file into ``folder``; the model's path."""
    files: dict[str, bytes] = {}
    m = build(fill, location, files)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    path = folder / "m.onnx"
    onnx.save_model(m, os.fspath(path))
    return path
