"""ONNX ops through the shared formulas: one tiny hand-built graph per adapter, each expected
value derived by hand in a comment."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402
from onnx_graphs import analyze, init, model, vi  # noqa: E402

from modelmeter.errors import InputError  # noqa: E402

I64 = TensorProto.INT64
node = helper.make_node


def _cost(report):  # noqa: ANN001, ANN202
    return report.total().cost


def test_conv_with_bias_grouped_and_transposed() -> None:
    # X 1x3x8x8, W 4x3x3x3, pads 1 -> Y 1x4x8x8: MACs = 256 outputs * 27 = 6,912;
    # with bias exact FLOPs = 2*MACs = 13,824. Bytes read X 192*4 + W 108*4 + B 4*4 = 1,216,
    # of which weights 448; written 256*4 = 1,024. Params 108 + 4 = 112.
    m = model(
        [node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        [vi("x", [1, 3, 8, 8])],
        [vi("y", None)],
        [init("w", (4, 3, 3, 3)), init("b", (4,))],
    )
    r = analyze(m)
    c = _cost(r)
    assert (c.macs, c.flops, c.bytes_read, c.weight_bytes, c.bytes_written) == (
        6912, 13824, 1216, 448, 1024
    )
    assert r.total().params == 112 and list(r.by_operator()) == ["onnx.Conv"]
    # depthwise (group 3), no bias: W 3x1x3x3, Y 1x3x8x8: MACs 192*9 = 1,728;
    # FLOPs 2*1728 - 192 = 3,264
    m = model(
        [node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=3)],
        [vi("x", [1, 3, 8, 8])],
        [vi("y", None)],
        [init("w", (3, 1, 3, 3))],
    )
    assert (_cost(analyze(m)).macs, _cost(analyze(m)).flops) == (1728, 3264)
    # transposed: X 1x2x4x4, W 2x3x2x2, strides 2 -> Y 1x3x8x8; every input element is
    # scattered over 3*2*2 outputs: MACs 32*12 = 384; FLOPs 2*384 - 192 outputs = 576
    m = model(
        [node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
        [vi("x", [1, 2, 4, 4])],
        [vi("y", None)],
        [init("w", (2, 3, 2, 2))],
    )
    c = _cost(analyze(m))
    assert (c.macs, c.flops) == (384, 576)


def test_gemm_transposes_alpha_beta() -> None:
    # A given 4x3 with transA (so 3x4), B 5x4 with transB (so 4x5), C (5,), alpha 2:
    # MACs 3*4*5 = 60; exact: 2*60 (bias) + 15 (alpha multiplies) = 135; 2mac 120
    def gemm(with_c: bool, alpha: float):  # noqa: ANN202
        ins = ["a", "b", "c"] if with_c else ["a", "b"]
        inits = [init("b", (5, 4))] + ([init("c", (5,))] if with_c else [])
        return model(
            [node("Gemm", ins, ["y"], transA=1, transB=1, alpha=alpha)],
            [vi("a", [4, 3])],
            [vi("y", None)],
            inits,
        )

    assert (_cost(analyze(gemm(True, 2.0))).macs, _cost(analyze(gemm(True, 2.0))).flops) == (
        60, 135
    )
    assert _cost(analyze(gemm(True, 2.0), convention="2mac")).flops == 120
    # no C: beta counts as 0, (2k-1)*m*n = 7*15 = 105
    assert _cost(analyze(gemm(False, 1.0))).flops == 105


def test_matmul_broadcasts_like_torch_matmul() -> None:
    torch = pytest.importorskip("torch")
    import modelmeter

    # (2,1,3,4) @ (5,4,6) -> (2,5,3,6): 180 outputs of a length-4 dot: MACs 720,
    # FLOPs 7*180 = 1,260 -- as PyTorch's matmul on the same shapes
    m = model(
        [node("MatMul", ["a", "b"], ["y"])],
        [vi("a", [2, 1, 3, 4]), vi("b", [5, 4, 6])],
        [vi("y", None)],
    )
    c = _cost(analyze(m))
    assert (c.macs, c.flops) == (720, 1260)
    t = modelmeter.analyze(torch.matmul, ("2x1x3x4", "5x4x6")).total().cost
    assert (t.macs, t.flops) == (720, 1260)
    # a 1-D operand: (4,) @ (4,6) -> (6,): MACs 24, FLOPs 7*6 = 42
    m = model(
        [node("MatMul", ["a", "b"], ["y"])], [vi("a", [4]), vi("b", [4, 6])], [vi("y", None)]
    )
    c = _cost(analyze(m))
    assert (c.macs, c.flops) == (24, 42)


def test_pooling_strides_default_to_one() -> None:
    # MaxPool 3x3 on 5x5 without strides: ONNX's stride is 1 (PyTorch's default would be
    # the kernel): 3x3 outputs, each window covers 9 elements: 8 compares * 9 = 72
    m = model(
        [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3])],
        [vi("x", [1, 1, 5, 5])],
        [vi("y", None)],
    )
    assert _cost(analyze(m)).flops == 72
    # AveragePool k3 s2 SAME_UPPER on 4x4 -> 2x2, pads (0 before, 1 after) per dim: windows
    # cover 3 and 2 rows (the padded row is not read): 5 per dim, 5*5 = 25 elements summed
    # and divided, K per output: FLOPs 25
    m = model(
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
              auto_pad="SAME_UPPER")],
        [vi("x", [1, 1, 4, 4])],
        [vi("y", None)],
    )
    assert _cost(analyze(m)).flops == 25


def test_gather_reads_only_the_selected_rows() -> None:
    # table 10x4 (a parameter), ids 2x3 int64 -> 2x3x4: 0 FLOPs; read ids 6*8 = 48 bytes and
    # the 6 selected rows 24*4 = 96 (weights), written 96
    m = model(
        [node("Gather", ["table", "ids"], ["y"])],
        [vi("ids", [2, 3], I64)],
        [vi("y", None)],
        [init("table", (10, 4))],
    )
    r = analyze(m)
    c = _cost(r)
    assert (c.flops, c.bytes_read, c.weight_bytes, c.bytes_written) == (0, 144, 96, 96)
    assert r.total().params == 40


def test_slice_and_transpose_move_data() -> None:
    # Slice rows 1..3 of a 4x6 input: reads the 12 selected floats (48 bytes) and its three
    # int64 index constants (24 bytes), writes 48; Transpose of the 2x6 slice reads and
    # writes 48: in ONNX runtimes both are copies. Relu after it: 12 FLOPs.
    m = model(
        [
            node("Slice", ["x", "starts", "ends", "axes"], ["s"]),
            node("Transpose", ["s"], ["t"], perm=[1, 0]),
            node("Relu", ["t"], ["y"]),
        ],
        [vi("x", [4, 6])],
        [vi("y", None)],
        [init("starts", (1,), np.int64, 1), init("ends", (1,), np.int64, 3),
         init("axes", (1,), np.int64, 0)],
    )
    ops = analyze(m).by_operator()
    assert (ops["onnx.Slice"].cost.bytes_read, ops["onnx.Slice"].cost.bytes_written) == (72, 48)
    assert (ops["onnx.Transpose"].cost.bytes_read, ops["onnx.Transpose"].cost.flops) == (48, 0)
    assert ops["onnx.Relu"].cost.flops == 12


def test_load_time_folding_and_views() -> None:
    # Transpose(W) only depends on a constant: runtimes compute it when they load the model,
    # so it is not counted, and the MatMul reads W as a weight. Reshape is an alias (free).
    # x 2x3 @ W^T (W 4x3 -> 3x4): MACs 2*3*4 = 24, FLOPs 5*8 = 40; weight bytes 48.
    # Relu on the 8 outputs: 8. Activations written: MatMul 32 + Relu 32 bytes.
    m = model(
        [
            node("Transpose", ["w"], ["wt"], perm=[1, 0]),
            node("MatMul", ["x", "wt"], ["h"]),
            node("Reshape", ["h", "shape"], ["h2"]),
            node("Relu", ["h2"], ["y"]),
        ],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("w", (4, 3)), init("shape", (1,), np.int64, 8)],
    )
    r = analyze(m)
    c = _cost(r)
    assert set(r.by_operator()) == {"onnx.MatMul", "onnx.Relu"}
    assert (c.macs, c.flops, c.weight_bytes) == (24, 48, 48)
    t = r.total()
    assert (t.params, t.unused_params) == (12, 0)  # the shape constant is not a parameter
    assert t.activation_bytes == 64
    # peak: x (24) and h (32) live during the MatMul = 56; then h (aliased by h2) and y = 64
    assert t.peak_activation_bytes == 64
    assert any("folded" in n for n in r.notes)


def test_cumsum_axis_comes_from_its_input() -> None:
    # CumSum along axis 0 of 3x4: 4 columns of 3, 2 adds each = 8 (along the last axis it
    # would be 3 rows of 4: 9)
    m = model(
        [node("CumSum", ["x", "axis"], ["y"])],
        [vi("x", [3, 4])],
        [vi("y", None)],
        [init("axis", (), np.int64, 0)],
    )
    assert _cost(analyze(m)).flops == 8


def test_norms_and_softmax() -> None:
    # BatchNormalization (eval) on 1x2x3x3: 2 per element + per channel (4 + gamma) =
    # 2*18 + 2*5 = 46; scale and B are parameters (4), mean and var buffers (4)
    m = model(
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
        [vi("x", [1, 2, 3, 3])],
        [vi("y", None)],
        [init("s", (2,)), init("b", (2,)), init("m", (2,)), init("v", (2,))],
    )
    r = analyze(m)
    assert (_cost(r).flops, r.total().params, r.total().buffers) == (46, 4, 4)
    # LayerNormalization over the last axis of 2x3x4 with scale and bias:
    # 24*(5 + 2) + 2 per row * 6 rows = 180
    m = model(
        [node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1)],
        [vi("x", [2, 3, 4])],
        [vi("y", None)],
        [init("s", (4,)), init("b", (4,))],
    )
    assert _cost(analyze(m)).flops == 180
    # Softmax over axis 1 of 2x3x4: 8 rows of 3, 5*3 - 2 = 13 each: 104
    m = model(
        [node("Softmax", ["x"], ["y"], axis=1)], [vi("x", [2, 3, 4])], [vi("y", None)]
    )
    assert _cost(analyze(m)).flops == 104


def test_unsupported_ops_are_listed_not_zero() -> None:
    # Det has no formula and a custom-domain op is unknown: both listed with their counts;
    # the Relu is counted (6)
    m = model(
        [
            node("Relu", ["x"], ["r"]),
            node("Det", ["sq"], ["d"]),
            node("Foo", ["r"], ["f"], domain="com.example"),
        ],
        [vi("x", [2, 3]), vi("sq", [3, 3])],
        [vi("d", None), vi("f", None)],
        extra_opsets={"com.example": 1},
    )
    r = analyze(m)
    assert r.unsupported == {"onnx.Det": 1, "onnx.com.example.Foo": 1}
    assert _cost(r).flops == 6


def test_parameter_kinds() -> None:
    # a rank-0 float (a scale written into the graph) and an int64 shape are constants; the
    # (1,)-shaped float is a parameter; an initializer nothing reads is an unused parameter
    m = model(
        [
            node("Mul", ["x", "scale"], ["a"]),
            node("Mul", ["a", "gamma"], ["b"]),
            node("Reshape", ["b", "shape"], ["y"]),
        ],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("scale", (), value=0.125), init("gamma", (1,)), init("shape", (1,), np.int64, 6),
         init("spare", (5,))],
    )
    t = analyze(m).total()
    assert (t.params, t.buffers, t.unused_params) == (6, 0, 5)


def test_module_tree_from_torchscript_node_names() -> None:
    # /layer1/layer1.0/conv1/Conv -> module layer1.0.conv1; relu_1 beside relu is the second
    # call of layer1.0.relu; a leaf's type is its op type, a parent's "Module"
    m = model(
        [
            node("Conv", ["x", "w"], ["c"], name="/layer1/layer1.0/conv1/Conv"),
            node("Relu", ["c"], ["r"], name="/layer1/layer1.0/relu/Relu"),
            node("Add", ["r", "x"], ["s"], name="/layer1/layer1.0/Add"),
            node("Relu", ["s"], ["y"], name="/layer1/layer1.0/relu_1/Relu"),
        ],
        [vi("x", [1, 2, 3, 3])],
        [vi("y", None)],
        [init("w", (2, 2, 1, 1))],
    )
    r = analyze(m)
    rows = {row.name: row for row in r.by_module()}
    assert list(rows) == ["", "layer1", "layer1.0", "layer1.0.conv1", "layer1.0.relu"]
    assert rows["layer1.0.relu"].calls == 2 and rows["layer1.0.relu"].type == "Relu"
    # two relus of 18 elements: 36 FLOPs; the block's own Add: 18
    assert rows["layer1.0.relu"].total_cost.flops == 36
    assert rows["layer1.0"].self_cost.flops == 18 and rows["layer1.0"].type == "Module"
    assert rows["layer1.0.conv1"].params == 4 and rows["layer1.0.conv1"].output_shapes == [
        [1, 2, 3, 3]
    ]


def test_module_tree_from_exporter_metadata() -> None:
    # torch.onnx.export(dynamo=True) writes the module path and classes on each node
    n = node("Relu", ["x"], ["y"], name="node_relu")
    for key, value in (
        ("pkg.torch.onnx.name_scopes", "['', 'block', 'block.act', 'relu']"),
        ("pkg.torch.onnx.class_hierarchy",
         "['my.Net', 'my.Block', 'torch.nn.ReLU', 'aten.relu.default']"),
    ):
        p = n.metadata_props.add()
        p.key, p.value = key, value
    r = analyze(model([n], [vi("x", [4])], [vi("y", None)]))
    assert [(row.name, row.type) for row in r.by_module()] == [
        ("", "Net"), ("block", "Block"), ("block.act", "ReLU")
    ]


def test_control_flow() -> None:
    body_relu = helper.make_graph([node("Relu", ["x"], ["t"])], "then", [], [vi("t", [2, 3])])
    body_sig = helper.make_graph([node("Sigmoid", ["x"], ["e"])], "else", [], [vi("e", [2, 3])])
    # If with a constant true condition: only the then-branch runs: Relu on 6 elements = 6
    m = model(
        [node("If", ["c"], ["y"], then_branch=body_relu, else_branch=body_sig)],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("c", (), np.bool_, True)],
    )
    assert _cost(analyze(m)).flops == 6
    # a data-dependent condition: not counted, listed as unsupported with a note
    m = model(
        [node("If", ["c"], ["y"], then_branch=body_relu, else_branch=body_sig)],
        [vi("x", [2, 3]), vi("c", [], TensorProto.BOOL)],
        [vi("y", None)],
    )
    r = analyze(m)
    assert r.unsupported == {"onnx.If": 1} and any("depends on the data" in n for n in r.notes)
    # Loop with trip count 3 adding x to a carried 2x3 value: 6 adds per iteration = 18
    loop_body = helper.make_graph(
        [node("Identity", ["cond_in"], ["cond_out"]), node("Add", ["v_in", "x"], ["v_out"])],
        "body",
        [vi("i", [], I64), vi("cond_in", [], TensorProto.BOOL), vi("v_in", [2, 3])],
        [vi("cond_out", [], TensorProto.BOOL), vi("v_out", [2, 3])],
    )
    m = model(
        [node("Loop", ["trips", "", "x"], ["y"], body=loop_body)],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("trips", (), np.int64, 3)],
    )
    r = analyze(m)
    assert _cost(r).flops == 18 and r.by_operator()["onnx.Add"].calls == 3
    # Scan over 5 rows of a 5x2 input, state s (2,) += row: 2 adds per step = 10
    scan_body = helper.make_graph(
        [node("Add", ["s_in", "row"], ["s_out"])],
        "scan",
        [vi("s_in", [2]), vi("row", [2])],
        [vi("s_out", [2])],
    )
    m = model(
        [node("Scan", ["s0", "seq"], ["s"], body=scan_body, num_scan_inputs=1)],
        [vi("s0", [2]), vi("seq", [5, 2])],
        [vi("s", None)],
    )
    assert _cost(analyze(m)).flops == 10


def test_convention_and_dtype() -> None:
    # Conv without bias: 2mac FLOPs = 2*MACs = 2*6912 (exact: 2*6912 - 256 outputs)
    m = model(
        [node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        [vi("x", [1, 3, 8, 8])],
        [vi("y", None)],
        [init("w", (4, 3, 3, 3))],
    )
    assert _cost(analyze(m, convention="2mac")).flops == 13824
    assert _cost(analyze(m)).flops == 13824 - 256
    # dtype=bf16: floating tensors counted at 2 bytes: read (192 + 108)*2 = 600, written 512;
    # parameter bytes 216; counts unchanged
    r = analyze(m, dtype="bf16")
    c = _cost(r)
    assert (c.bytes_read, c.bytes_written, c.macs) == (600, 512, 6912)
    assert r.size_by_dtype()["native"] == 216 and r.inputs[0].dtype == "bfloat16"


def test_unknown_shape_is_a_clear_error() -> None:
    # NonZero's output size depends on the data: the MatMul after it cannot be counted
    m = model(
        [node("NonZero", ["x"], ["nz"]), node("Cast", ["nz"], ["f"], to=TensorProto.FLOAT),
         node("MatMul", ["f", "w"], ["y"])],
        [vi("x", [4, 4])],
        [vi("y", None)],
        [init("w", (1, 3))],
    )
    with pytest.raises(InputError, match="may depend on the data"):
        analyze(m)


def test_shared_initializer_counted_once_owned_by_first_reader() -> None:
    # W (3x3) read by two MatMuls in different modules: 9 parameters once, in "enc"; the
    # second module reads it too (weight bytes 36 each), so it is not unused
    m = model(
        [
            node("MatMul", ["x", "w"], ["h"], name="/enc/MatMul"),
            node("MatMul", ["h", "w"], ["y"], name="/dec/MatMul"),
        ],
        [vi("x", [2, 3])],
        [vi("y", None)],
        [init("w", (3, 3))],
    )
    r = analyze(m)
    rows = {row.name: row for row in r.by_module()}
    assert (r.total().params, rows["enc"].params, rows["dec"].params) == (9, 9, 0)
    assert rows["dec"].total_cost.weight_bytes == 36 and r.total().unused_params == 0


def test_each_formula_is_applied_once_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    # the walker applies a node's formula (to name the node when it fails) and the builder
    # uses that result: a Conv then a Relu apply two formulas, once each
    from modelmeter.registry import Formula

    applied: list[str] = []
    plain = Formula.__call__

    def counting(self: Formula, call):  # noqa: ANN001, ANN202
        applied.append(self.name)
        return plain(self, call)

    monkeypatch.setattr(Formula, "__call__", counting)
    m = model(
        [node("Conv", ["x", "w"], ["c"]), node("Relu", ["c"], ["y"])],
        [vi("x", [1, 3, 8, 8])],
        [vi("y", None)],
        [init("w", (4, 3, 3, 3))],
    )
    analyze(m)
    assert sorted(applied) == ["convolution", "relu"]
