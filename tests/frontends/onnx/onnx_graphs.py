"""Helpers for the ONNX tests: tiny hand-built graphs, and exports of PyTorch models."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import modelmeter

F = TensorProto.FLOAT


def vi(name: str, shape: list[Any] | None, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def init(name: str, shape: tuple[int, ...], dtype: Any = np.float32, value: Any = None) -> Any:
    arr = np.full(shape, 0.5 if value is None else value, dtype=dtype)
    return numpy_helper.from_array(arr, name)


def model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[Any] = (),  # type: ignore[assignment]
    opset: int = 18,
    extra_opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset)]
    for domain, version in (extra_opsets or {}).items():
        opsets.append(helper.make_opsetid(domain, version))
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 8
    return m


def analyze(m: onnx.ModelProto | str | Path, *args: Any, **kw: Any) -> modelmeter.Report:
    return modelmeter.analyze(m if not isinstance(m, Path) else str(m), *args, **kw)


def randomize(module: Any) -> None:
    """Distinct values in every floating parameter and buffer, so that an exporter that merges
    equal tensors (initializer deduplication) keeps them apart; variances stay positive."""
    import torch

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)


def export(module: Any, args: tuple, path: Path, *, dynamo: bool, fold: bool = False,
           **kw: Any) -> Path:
    """``torch.onnx.export`` quietly. ``fold``: let the exporter fold constants (BatchNorm
    into Conv ...), as a default export does; off, the graph keeps the model's structure."""
    import torch

    if dynamo:
        kw.setdefault("optimize", fold)
    else:
        kw.setdefault("do_constant_folding", fold)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=dynamo, external_data=False, **kw)
    return path
