"""Which initializers are parameters, buffers or plain constants.

ONNX stores every tensor the graph starts from as an initializer; PyTorch distinguishes
parameters (learnable), buffers (running statistics, rotary frequencies ...) and constants.
The rules, first match wins:

1. ``torch.onnx.export(dynamo=True)`` records the exported program's signature on the graph
   (``pkg.torch.export.ExportedProgram.graph_signature``): names listed as ``PARAMETER`` are
   parameters, ``BUFFER`` are buffers.
2. An initializer read in a statistics or quantisation-parameter slot is a buffer:
   BatchNormalization's mean and variance; the scales and zero points of QuantizeLinear,
   DequantizeLinear, QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger and QGemm.
3. An integer or boolean initializer is a parameter only when it is read as quantised data
   (DequantizeLinear's input, the weights and int32 bias of QLinearConv, QLinearMatMul,
   MatMulInteger, ConvInteger, QGemm, or a Gather table); otherwise it is a constant (shapes,
   axes, indices, masks).
4. A floating initializer of rank 0 is a constant (a scalar written into the graph, such as an
   attention scale); any other floating initializer is a parameter.

Tensors of Constant nodes are constants. Constants are not listed as parameters; reading them
costs bytes like any tensor.
"""

from __future__ import annotations

import re
from typing import Any

PARAM, BUFFER, CONST = "param", "buffer", "const"
_SIGNATURE = "pkg.torch.export.ExportedProgram.graph_signature"
_SIG_LINE = re.compile(
    r"^\s*\S+:\s*(?P<kind>PARAMETER|BUFFER|CONSTANT_TENSOR)\s+target='(?P<t>[^']+)'"
)

# (op type) -> input slots read as statistics or quantisation parameters
BUFFER_SLOTS: dict[str, frozenset[int]] = {
    "BatchNormalization": frozenset({3, 4}),
    "QuantizeLinear": frozenset({1, 2}),
    "DequantizeLinear": frozenset({1, 2}),
    "QLinearConv": frozenset({1, 2, 4, 5, 6, 7}),
    "QLinearMatMul": frozenset({1, 2, 4, 5, 6, 7}),
    "MatMulInteger": frozenset({2, 3}),
    "ConvInteger": frozenset({2, 3}),
    "QGemm": frozenset({1, 2, 4, 5, 7, 8}),
    "DynamicQuantizeLSTM": frozenset({8, 9, 10, 11}),
}
# (op type) -> input slots read as (possibly integer) weights
DATA_SLOTS: dict[str, frozenset[int]] = {
    "DequantizeLinear": frozenset({0}),
    "QLinearConv": frozenset({3, 8}),
    "QLinearMatMul": frozenset({0, 3}),
    "MatMulInteger": frozenset({0, 1}),
    "ConvInteger": frozenset({0, 1}),
    "QGemm": frozenset({0, 3, 6}),
    "DynamicQuantizeLSTM": frozenset({1, 2}),
    "Gather": frozenset({0}),
}
_FLOAT = {1, 10, 11, 16, 17, 18, 19, 20, 23, 24}


def signature_kinds(graph: Any) -> dict[str, str]:
    """Initializer name -> PARAM/BUFFER/CONST from the dynamo exporter's signature."""
    text = next((p.value for p in graph.metadata_props if p.key == _SIGNATURE), "")
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _SIG_LINE.match(line)
        if m:
            kind = m.group("kind")
            out[m.group("t")] = {"PARAMETER": PARAM, "BUFFER": BUFFER}.get(kind, CONST)
    return out


def classify(graph: Any, sources: dict[str, str]) -> dict[str, str]:
    """Kind of every initializer of ``graph``. ``sources`` maps a value to the initializer it
    is a load-time transform of (Identity, Transpose, Reshape ... of a constant), so that a
    slot read through such a transform counts for the initializer."""
    sig = signature_kinds(graph)
    slots_buffer: set[str] = set()
    slots_data: set[str] = set()
    for node in graph.node:
        buf = BUFFER_SLOTS.get(node.op_type, frozenset())
        data = DATA_SLOTS.get(node.op_type, frozenset())
        for i, name in enumerate(node.input):
            src = sources.get(name, name)
            if i in buf:
                slots_buffer.add(src)
            if i in data:
                slots_data.add(src)
    kinds: dict[str, str] = {}
    for t in graph.initializer:
        if t.name in sig:
            kinds[t.name] = sig[t.name]
        elif t.name in slots_buffer:
            kinds[t.name] = BUFFER
        elif t.data_type not in _FLOAT:
            kinds[t.name] = PARAM if t.name in slots_data else CONST
        elif len(t.dims) == 0:
            kinds[t.name] = CONST
        else:
            kinds[t.name] = PARAM
    return kinds


__all__ = ["BUFFER", "CONST", "PARAM", "classify", "signature_kinds"]
