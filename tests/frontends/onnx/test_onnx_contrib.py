"""onnxruntime's fused ops (com.microsoft): shapes, and each counted as the standard ops it
fuses. Every hand-built fused graph is compared with the same computation written with
standard ops (same MACs, FLOPs and bytes), with the derivation in a comment; one real model
optimised by onnxruntime closes."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")

from onnx import helper  # noqa: E402
from onnx_graphs import analyze, init, model, vi  # noqa: E402

node = helper.make_node
MS = {"com.microsoft": 1}


def ms(op: str, inputs: list[str], outputs: list[str], **attrs) -> onnx.NodeProto:  # noqa: ANN003
    return node(op, inputs, outputs, domain="com.microsoft", **attrs)


def _totals(r):  # noqa: ANN001, ANN202
    c = r.total().cost
    return c.macs, c.flops, c.bytes_read, c.bytes_written


def test_fused_conv_is_conv_add_and_activation() -> None:
    # X 1x3x8x8, W 4x3x3x3 pads 1, B, Z 1x4x8x8, LeakyRelu: MACs 256 outputs * 27 = 6,912;
    # FLOPs conv with bias 2*6,912 = 13,824 + Add of Z 256 + LeakyRelu 2*256 = 14,592.
    # Bytes as the unfused parts: conv reads X 768 + W 432 + B 16, writes 1,024; the Add
    # reads 2*1,024, writes 1,024; LeakyRelu reads and writes 1,024: read 4,288, written 3,072
    fused = model(
        [ms("FusedConv", ["x", "w", "b", "z"], ["y"], pads=[1, 1, 1, 1],
            activation="LeakyRelu", activation_params=[0.1])],
        [vi("x", [1, 3, 8, 8]), vi("z", [1, 4, 8, 8])],
        [vi("y", None)],
        [init("w", (4, 3, 3, 3)), init("b", (4,))],
        extra_opsets=MS,
    )
    plain = model(
        [
            node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            node("Add", ["c", "z"], ["s"]),
            node("LeakyRelu", ["s"], ["y"], alpha=0.1),
        ],
        [vi("x", [1, 3, 8, 8]), vi("z", [1, 4, 8, 8])],
        [vi("y", None)],
        [init("w", (4, 3, 3, 3)), init("b", (4,))],
    )
    r = analyze(fused)
    assert r.unsupported == {}
    assert _totals(r) == _totals(analyze(plain))
    assert _totals(r) == (6912, 14592, 4288, 3072) and r.total().params == 112
    assert set(r.by_operator()) == {"onnx.Conv", "onnx.Add", "onnx.LeakyRelu"}
    assert any("FusedConv x1" in n for n in r.notes)
    # Relu, no Z, and a stride: Y 1x4x4x4 = 64 outputs * 27 = 1,728 MACs;
    # FLOPs 2*1,728 + 64 (Relu) = 3,520
    relu = model(
        [ms("FusedConv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2],
            activation="Relu")],
        [vi("x", [1, 3, 8, 8])], [vi("y", None)],
        [init("w", (4, 3, 3, 3)), init("b", (4,))], extra_opsets=MS,
    )
    c = analyze(relu).total().cost
    assert (c.macs, c.flops) == (1728, 3520)


def test_fused_gemm_and_fused_matmul() -> None:
    # FusedGemm: A 2x8, B^T given as 6x8 (transB), C 6, Relu: MACs 2*8*6 = 96;
    # FLOPs 2*96 (bias) + 12 (Relu) = 204
    gemm = model(
        [ms("FusedGemm", ["a", "b", "c"], ["y"], transB=1, activation="Relu")],
        [vi("a", [2, 8])], [vi("y", None)], [init("b", (6, 8)), init("c", (6,))],
        extra_opsets=MS,
    )
    c = analyze(gemm).total().cost
    assert (c.macs, c.flops) == (96, 204)
    # FusedMatMul: A 8x4 with transA (4x8), B 6x8 with transB (8x6), alpha 0.5: out 4x6,
    # MACs 4*8*6 = 192; FLOPs 2*192 - 24 = 360 (no bias) + 24 (scale by alpha) = 384
    mm = model(
        [ms("FusedMatMul", ["a", "b"], ["y"], transA=1, transB=1, alpha=0.5),
         node("Relu", ["y"], ["z"])],
        [vi("a", [8, 4])], [vi("z", None)], [init("b", (6, 8))], extra_opsets=MS,
    )
    r = analyze(mm)
    c = r.total().cost
    # + Relu on the 4x6 result (24): its shape comes from the FusedMatMul rule
    assert (c.macs, c.flops) == (192, 384 + 24)
    assert r.modules()  # walkable
    plain = model(
        [node("Transpose", ["a"], ["at"]), node("MatMul", ["at", "bt"], ["m"]),
         node("Mul", ["m", "half"], ["y"]), node("Relu", ["y"], ["z"])],
        [vi("a", [8, 4])], [vi("z", None)], [init("bt", (8, 6)), init("half", ())],
    )
    assert analyze(plain).total().cost.macs == 192
    # batched with broadcasting: A 3x4x5, B 5x2 -> 3x4x2: MACs 3*4*5*2 = 120
    b = model([ms("FusedMatMul", ["a", "b"], ["y"])], [vi("a", [3, 4, 5])], [vi("y", None)],
              [init("b", (5, 2))], extra_opsets=MS)
    assert analyze(b).total().cost.macs == 120


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "per_element"),
    [
        ("Gelu", ["x"], {}, 5),  # erf form: 5 per element
        ("FastGelu", ["x"], {}, 9),  # tanh form: 9
        ("FastGelu", ["x", "bias"], {}, 10),  # + bias add
        ("BiasGelu", ["x", "bias"], {}, 6),  # add + erf form
        ("QuickGelu", ["x"], {"alpha": 1.0}, 5),  # x * sigmoid(x): sigmoid 4 + mul 1 (SiLU)
        ("QuickGelu", ["x"], {}, 6),  # x * sigmoid(1.702 x): + the scaling multiply
        ("BiasAdd", ["x", "bias", "x"], {}, 2),  # two adds
    ],
)
def test_fused_activations(op, inputs, attrs, per_element) -> None:
    # X 2x3x8 = 48 elements; bias 8; then a Relu (1 per element) whose shape needs the rule
    m = model(
        [ms(op, inputs, ["y"], **attrs), node("Relu", ["y"], ["z"])],
        [vi("x", [2, 3, 8])], [vi("z", None)], [init("bias", (8,))], extra_opsets=MS,
    )
    r = analyze(m)
    assert r.unsupported == {}
    assert r.total().cost.flops == 48 * per_element + 48


def test_skip_layer_norm_and_rms_norms() -> None:
    # SkipLayerNormalization(x 2x4x8, skip, gamma, beta, bias): Add 64 + bias Add 64 +
    # LayerNormalization over rows of 8 with gamma and beta: 64*(5+1+1) + 2*8 rows = 464;
    # total 592. The sum is also output 3 (read by the Relu: 64) -> 656
    skip = model(
        [ms("SkipLayerNormalization", ["x", "s", "g", "b", "bias"], ["y", "", "", "sum"],
            epsilon=1e-5),
         node("Relu", ["sum"], ["r"]), node("Add", ["y", "r"], ["z"])],
        [vi("x", [2, 4, 8]), vi("s", [2, 4, 8])], [vi("z", None)],
        [init("g", (8,)), init("b", (8,)), init("bias", (8,))], extra_opsets=MS,
    )
    r = analyze(skip)
    assert r.unsupported == {}
    assert r.total().cost.flops == 592 + 64 + 64  # + the Relu and the final Add
    plain = model(
        [node("Add", ["x", "s"], ["t"]), node("Add", ["t", "bias"], ["sum"]),
         node("LayerNormalization", ["sum", "g", "b"], ["y"], axis=-1),
         node("Relu", ["sum"], ["r"]), node("Add", ["y", "r"], ["z"])],
        [vi("x", [2, 4, 8]), vi("s", [2, 4, 8])], [vi("z", None)],
        [init("g", (8,)), init("b", (8,)), init("bias", (8,))],
    )
    assert _totals(r) == _totals(analyze(plain))
    # SkipSimplifiedLayerNormalization(x, skip, gamma): Add 64 + RMS norm 64*(3+1) + 2*8 = 272
    rms = model(
        [ms("SkipSimplifiedLayerNormalization", ["x", "s", "g"], ["y"])],
        [vi("x", [2, 4, 8]), vi("s", [2, 4, 8])], [vi("y", None)], [init("g", (8,))],
        extra_opsets=MS,
    )
    assert analyze(rms).total().cost.flops == 64 + 272
    # SimplifiedLayerNormalization: onnxruntime registers it in the standard domain
    simple = model(
        [node("SimplifiedLayerNormalization", ["x", "g"], ["y"], axis=-1),
         node("Relu", ["y"], ["z"])],
        [vi("x", [2, 4, 8])], [vi("z", None)], [init("g", (8,))],
    )
    assert analyze(simple).total().cost.flops == 272 + 64


def test_layer_norm_written_at_an_old_opset() -> None:
    # onnxruntime's LayerNormFusion writes LayerNormalization into opset-13 graphs, where
    # ONNX has no schema for it: the shape rule keeps the next op countable.
    # 64*(5+1+1) + 2*8 = 464, + Relu 64
    m = model(
        [node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1),
         node("Relu", ["y"], ["z"])],
        [vi("x", [2, 4, 8])], [vi("z", None)], [init("g", (8,)), init("b", (8,))], opset=13,
    )
    assert analyze(m).total().cost.flops == 464 + 64


def test_fused_attention_is_unsupported_but_has_a_shape() -> None:
    # Attention(input 1x4x16, weights 16x48, bias 48, num_heads 2) -> 1x4x16; unsupported, and
    # the MatMul after it (16x5: 4*16*5 = 320 MACs) is still counted
    m = model(
        [ms("Attention", ["x", "w", "b"], ["a"], num_heads=2),
         node("MatMul", ["a", "fc"], ["y"])],
        [vi("x", [1, 4, 16])], [vi("y", None)],
        [init("w", (16, 48)), init("b", (48,)), init("fc", (16, 5))], extra_opsets=MS,
    )
    r = analyze(m)
    assert r.unsupported == {"onnx.com.microsoft.Attention": 1}
    assert r.total().cost.macs == 320


def test_unknown_activation_leaves_the_fused_op_unsupported() -> None:
    m = model(
        [ms("FusedConv", ["x", "w"], ["y"], activation="Swish")],
        [vi("x", [1, 3, 8, 8])], [vi("y", None)], [init("w", (4, 3, 3, 3))], extra_opsets=MS,
    )
    assert analyze(m).unsupported == {"onnx.com.microsoft.FusedConv": 1}


def test_layout_ops_name_the_op_whose_shape_is_unknown(tmp_path) -> None:
    from modelmeter.errors import InputError

    m = model(
        [node("ReorderInput", ["x"], ["r"], domain="com.microsoft.nchwc"),
         node("Relu", ["r"], ["y"])],
        [vi("x", [1, 8, 4, 4])], [vi("y", None)], extra_opsets={"com.microsoft.nchwc": 1},
    )
    with pytest.raises(InputError, match="com.microsoft.nchwc.ReorderInput.*ORT_ENABLE_EXTENDED"):
        analyze(m)


def test_onnxruntime_optimised_model_counts_like_the_original(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    from onnx_graphs import export

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.act = torch.nn.SiLU()
            self.norm = torch.nn.LayerNorm(64)
            self.fc = torch.nn.Linear(64, 16)
            self.gelu = torch.nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv(x)) + self.act(self.conv(x))
            y = self.norm(y.flatten(2))
            return self.gelu(self.fc(y))

    src = export(Net().eval(), (torch.randn(1, 3, 8, 8),), tmp_path / "net.onnx", dynamo=False,
                 opset_version=17)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    optimised = onnx.load(str(tmp_path / "opt.onnx"))
    fused = {n.op_type for n in optimised.graph.node if n.domain == "com.microsoft"}
    assert {"FusedConv", "QuickGelu", "Gelu"} & fused  # what the optimiser wrote
    before, after = analyze(src), analyze(tmp_path / "opt.onnx")
    assert after.unsupported == {}
    assert after.total().cost.macs == before.total().cost.macs
    assert any("fused" in n for n in after.notes)


# ---- ONNX's own Attention (opset 23), written by the dynamo exporter for SDPA -------------------
def _attention_model(nodes, inputs, outputs, opset: int = 23):  # noqa: ANN001, ANN202
    m = model(nodes, inputs, outputs, opset=opset)
    m.ir_version = 11
    return m


def test_onnx_attention_counts_like_sdpa() -> None:
    # Q, K, V (1, 4, 8, 8): S = 4*8*8 = 256 scores. MACs = S*(E + Ev) = 256*16 = 4,096.
    # FLOPs as the SDPA formula: Q@K^T (2*8-1)*256 = 3,840, scale 256, softmax (5*8-2) * 32
    # rows = 1,216, P@V (2*8-1) * 32 rows * 8 = 3,840 -> 9,152
    m = _attention_model(
        [node("Attention", ["q", "k", "v"], ["y"])],
        [vi("q", [1, 4, 8, 8]), vi("k", [1, 4, 8, 8]), vi("v", [1, 4, 8, 8])], [vi("y", None)],
    )
    r = analyze(m)
    c = r.total().cost
    assert (c.macs, c.flops, r.unsupported) == (4096, 9152, {})
    # 3-D inputs with grouped-query heads and a mask: Q (1, 8, 32) 4 heads of 8, K and V
    # (1, 6, 16) 2 heads of 8; S = 4*8*6 = 192 scores. MACs 192*16 = 3,072. FLOPs: Q@K^T
    # 15*192 = 2,880, scale 192, mask add 192, softmax 32 rows * (5*6-2) = 896,
    # P@V (2*6-1) * 32 * 8 = 2,816 -> 6,976
    m = _attention_model(
        [node("Attention", ["q", "k", "v", "mask"], ["y"], q_num_heads=4, kv_num_heads=2)],
        [vi("q", [1, 8, 32]), vi("k", [1, 6, 16]), vi("v", [1, 6, 16]), vi("mask", [8, 6])],
        [vi("y", None)],
    )
    c = analyze(m).total().cost
    assert (c.macs, c.flops) == (3072, 6976)


def test_onnx_attention_with_a_kv_cache() -> None:
    # one new token, 5 cached: K and V grow to T = 6 (two Concats writing present_key and
    # present_value). Q (1, 2, 1, 8): S = 2*1*6 = 12 scores, MACs 12*16 = 192; FLOPs Q@K^T
    # 15*12 = 180, scale 12, softmax 2 rows * 28 = 56, P@V 11 * 2 * 8 = 176 -> 424
    m = _attention_model(
        [node("Attention", ["q", "k", "v", "", "pk", "pv"], ["y", "present_k", "present_v"])],
        [vi("q", [1, 2, 1, 8]), vi("k", [1, 2, 1, 8]), vi("v", [1, 2, 1, 8]),
         vi("pk", [1, 2, 5, 8]), vi("pv", [1, 2, 5, 8])],
        [vi("y", None), vi("present_k", None), vi("present_v", None)],
    )
    r = analyze(m)
    c = r.total().cost
    assert (c.macs, c.flops, r.unsupported) == (192, 424, {})
    assert r.by_operator()["onnx.Concat"].calls == 2
    # bytes of the Concats: read past (80) + new (16) elements, write 96, each, float32
    concat = r.by_operator()["onnx.Concat"].cost
    assert (concat.bytes_read, concat.bytes_written) == (2 * 96 * 4, 2 * 96 * 4)


def test_dynamo_export_at_opset_23_keeps_attention_macs(tmp_path) -> None:
    # from opset 23 the dynamo exporter writes SDPA as one Attention node; it used to be
    # unsupported, losing the attention's MACs (28,672 -> 24,576 here)
    torch = pytest.importorskip("torch")
    from onnx_graphs import export

    import modelmeter

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = torch.nn.Linear(32, 96)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).view(1, 8, 3, 4, 8).permute(2, 0, 3, 1, 4)
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    net = Net().eval()
    path = export(net, (torch.randn(1, 8, 32),), tmp_path / "sdpa.onnx", dynamo=True,
                  opset_version=23)
    assert "Attention" in {n.op_type for n in onnx.load(str(path)).graph.node}
    r = analyze(path)
    # qkv 8*32*96 = 24,576 + attention 4 heads * 8 * 8 * (8 + 8) = 4,096
    assert (r.total().cost.macs, r.unsupported) == (28672, {})
    assert r.total().cost.macs == modelmeter.analyze(net, "1x8x32").total().cost.macs
