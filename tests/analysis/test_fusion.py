"""The fusion what-if: each rule on hand-built op sequences, its bytes by hand, switchable;
the per-module comparison, its renderings (gold files) and ``analyze --fuse``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cli_helpers import one_error, run

import modelmeter.usecases.analyze
from modelmeter.analysis.fusion import RULES, fuse, fusion_whatif, parse_rules
from modelmeter.errors import InputError
from modelmeter.hardware import HardwareSpec
from modelmeter.render.fusion import render_fusion
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report


def rec(op: str, cost: Cost, *shapes: tuple[int, ...], seq: int) -> OpRecord:
    return OpRecord(op, cost, shapes=shapes, seq=seq)


def conv_bn_relu() -> Report:
    """conv (1x4x8x8 -> 1x8x8x8 float32: output 2,048 B), batch norm, relu, each its module.

    conv: macs 18,432, flops 36,864, read 1,024 (input) + 1,152 (weight) = 2,176, written 2,048
    bn:   flops 1,024, read 2,048 + 128 (4 x 8 stats) = 2,176, written 2,048
    relu: flops 512, read 2,048, written 2,048
    """
    conv = ModuleNode("conv", "Conv2d", 1, 1, ops=[rec(
        "aten.convolution", Cost(18_432, 36_864, 2_176, 2_048, 1_152),
        (1, 4, 8, 8), (8, 4, 3, 3), seq=0)])
    bn = ModuleNode("bn", "BatchNorm2d", 1, 1, ops=[rec(
        "aten.native_batch_norm", Cost(0, 1_024, 2_176, 2_048, 128),
        (1, 8, 8, 8), (8,), (8,), (8,), (8,), seq=1)])
    relu = ModuleNode("relu", "ReLU", 1, 1, ops=[rec(
        "aten.relu", Cost(0, 512, 2_048, 2_048, 0), (1, 8, 8, 8), seq=2)])
    root = ModuleNode("", "Net", 0, 1, children=[conv, bn, relu])
    return Report("net", "torch", "exact", "meta", [InputSpec((1, 4, 8, 8), "float32")], root)


def attention() -> Report:
    """Q @ K^T, + bias, softmax, V made contiguous, P @ V (float32; batch 2, 4 tokens, dim 8):

    bmm1:    read Q 256 + K^T 256 = 512, written scores 2x4x4x4 = 128
    add:     read 128 + bias 64 = 192, written 128
    softmax: read 128, written 128
    clone:   read V 256, written 256
    bmm2:    read P 128 + V 256 = 384, written O 256
    """
    ops = [
        rec("aten.bmm", Cost(256, 480, 512, 128), (2, 4, 8), (2, 8, 4), seq=0),
        rec("aten.add", Cost(0, 32, 192, 128), (2, 4, 4), (1, 4, 4), seq=1),
        rec("aten._softmax", Cost(0, 96, 128, 128), (2, 4, 4), seq=2),
        rec("aten.clone", Cost(0, 0, 256, 256), (2, 4, 8), seq=3),
        rec("aten.bmm", Cost(256, 448, 384, 256), (2, 4, 4), (2, 4, 8), seq=4),
    ]
    root = ModuleNode("", "Attn", 0, 1, ops=ops)
    return Report("attn", "torch", "exact", "meta", [InputSpec((2, 4, 8), "float32")], root)


def costs(report: Report) -> list[tuple[str, Cost]]:
    return [(n.name, o.cost) for n in report.modules() for o in n.ops]


def test_conv_bn_act_folds_the_norm_and_fuses_the_activation() -> None:
    fused = fuse(conv_bn_relu(), ("conv-bn-act",))
    ((module, cost),) = costs(fused)
    assert module == "conv"
    # read: 2,176 + 2,176 + 2,048 - 2,048 (conv out) - 2,048 (bn out) - 128 (the bn's four
    # vectors, folded into the conv's weights when the kernel is built) = 2,176: the conv's
    # own input and weight; written: 3 x 2,048 - 2 x 2,048 = 2,048; FLOPs: 36,864 + 512 (bn
    # folded); weight bytes: the conv's 1,152 alone
    assert cost == Cost(18_432, 37_376, 2_176, 2_048, 1_152)
    # the report itself is unchanged
    assert len(costs(conv_bn_relu())) == 3


def test_a_folded_batch_norm_reads_no_vectors_in_a_traced_model() -> None:
    import torch

    import modelmeter

    # resnet18's stem: conv 7x7/2, 3 -> 64 channels, no bias, on 1x3x224x224 float32; bn; relu
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False),
                                torch.nn.BatchNorm2d(64), torch.nn.ReLU()).eval()
    report = modelmeter.analyze(model, "1x3x224x224")
    ((_, conv), (_, bn), _) = costs(report)
    # conv: read 3 x 224 x 224 x 4 = 602,112 + weight 64 x 3 x 49 x 4 = 37,632 -> 639,744;
    # written 64 x 112 x 112 x 4 = 3,211,264; bn: 4 vectors of 64 float32 = 1,024 weight bytes
    assert (conv.bytes_read, conv.bytes_written, bn.weight_bytes) == (639_744, 3_211_264, 1_024)
    ((_, fused),) = costs(fuse(report, ("conv-bn-act",)))
    # the fused kernel moves what the convolution alone moves: 639,744 + 3,211,264 = 3,851,008
    # (it was 3,852,032 with the bn's 1,024 still read)
    assert fused.bytes_read + fused.bytes_written == 3_851_008
    assert fused.weight_bytes == 37_632


def test_elementwise_rule_fuses_the_activation_into_the_norm_only() -> None:
    fused = costs(fuse(conv_bn_relu(), ("elementwise",)))
    # conv alone; bn + relu: read 2,176 + 2,048 - 2,048 = 2,176, written 2,048, FLOPs 1,536
    assert [m for m, _ in fused] == ["conv", "bn"]
    assert fused[1][1] == Cost(0, 1_536, 2_176, 2_048, 128)


def test_no_rules_changes_nothing() -> None:
    assert costs(fuse(conv_bn_relu(), ())) == costs(conv_bn_relu())
    assert costs(fuse(attention(), ("elementwise", "conv-bn-act"))) != costs(attention())


def test_attention_is_one_kernel_that_reads_q_k_bias_v_and_writes_o() -> None:
    ((_, cost),) = costs(fuse(attention(), ("attention",)))
    # read Q 256 + K 256 + bias 64 + V 256 = 832; written O 256 (scores, probabilities and
    # the copy of V never reach memory); FLOPs and MACs: the sums
    assert cost.bytes_read == 832 and cost.bytes_written == 256
    assert (cost.macs, cost.flops) == (512, 480 + 32 + 96 + 448)


def test_an_op_reading_another_tensor_does_not_join() -> None:
    # relu on a tensor of another size than the conv's output: 1x8x8x4 (1,024 B) != 2,048 B
    r = conv_bn_relu()
    relu = r.root.children[2]
    relu.ops = [rec("aten.relu", Cost(0, 256, 1_024, 1_024, 0), (1, 8, 8, 4), seq=2)]
    r.root.children = [r.root.children[0], relu]
    assert len(costs(fuse(r, RULES))) == 2


def toy(**kw: Any) -> HardwareSpec:
    """1 PFLOP/s (compute negligible here), 1 GB/s, 5 us per op in series."""
    base: dict[str, Any] = dict(name="toy", display_name="Toy", vendor="-", kind="cpu",
                                bandwidth=1e9, compute={"float32": 1e15}, kernel_overhead=5e-6,
                                verified=True)
    base.update(kw)
    return HardwareSpec(**base)


def test_whatif_per_module_and_total_by_hand() -> None:
    w = fusion_whatif(conv_bn_relu(), toy())
    t = w.total
    assert (t.kernels, t.fused_kernels) == (3, 1)
    # unfused: (4,224 + 4,224 + 4,096) B at 1 GB/s = 12.544 us + 3 x 5 us = 27.544 us
    # fused: (2,176 + 2,048) B = 4.224 us + 5 us = 9.224 us (the bn's 128 B of vectors
    # folded away)
    assert t.bytes == 12_544 and t.fused_bytes == 4_224
    assert t.latency_s == pytest.approx(27.544e-6)
    assert t.fused_latency_s == pytest.approx(9.224e-6, rel=1e-3)  # + 37,376 / 1e15 s
    bn = next(r for r in w.rows if r.name == "bn")
    assert (bn.fused_kernels, bn.fused_bytes) == (0, 0)  # its op joined the conv's kernel
    # under graphs no host time: 4.224 us
    g = fusion_whatif(conv_bn_relu(), toy(), runtime="graphs").total
    assert g.fused_latency_s == pytest.approx(4.224e-6, rel=1e-3)
    assert w.to_dict()["schema"] == "modelmeter.fusion/1"


def test_parse_rules() -> None:
    assert parse_rules("all") == RULES and parse_rules("none") == ()
    assert parse_rules("attention, elementwise") == ("attention", "elementwise")
    with pytest.raises(InputError, match="unknown fusion rule 'fusey'"):
        parse_rules("elementwise,fusey")
    # all and none are whole choices, not rules to list beside others
    with pytest.raises(InputError, match=r"fusion rule 'all' stands alone \(--fuse all\); to "
                                         r"pick rules, list some of elementwise, "):
        parse_rules("all,none")
    with pytest.raises(InputError, match="fusion rule 'none' stands alone"):
        parse_rules("elementwise, none")


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_renderings_have_gold_files(fmt: str, gold: Callable[[str, str], None]) -> None:
    text = render_fusion(fusion_whatif(conv_bn_relu(), toy()), fmt, depth=None)
    gold(f"fusion.{'txt' if fmt == 'table' else fmt}", text)


def test_rendered_rows_add_up() -> None:
    # children's fused bytes and kernels add up to the model's (the rows of the CSV)
    lines = render_fusion(fusion_whatif(conv_bn_relu(), toy()), "csv", depth=None).splitlines()
    rows = [line.split(",") for line in lines[1:]]
    for col in (2, 3, 4, 5):
        assert int(rows[0][col]) == sum(int(r[col]) for r in rows[1:])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: conv_bn_relu())


def test_cli_fuse(capsys: pytest.CaptureFixture[str], fake: None) -> None:
    code, out, _ = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "--fuse", "-f", "json")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "modelmeter.fusion/1" and d["rules"] == list(RULES)
    assert (d["total"]["kernels"], d["total"]["fused_kernels"]) == (3, 1)
    code, out, _ = run(capsys, "analyze", "m", "--hardware", "h100-sxm", "--fuse",
                       "elementwise", "--runtime", "graphs")
    assert code == 0 and "rules: elementwise" in out and "runtime graphs" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fuse"], "--fuse needs a chip"),
        (["--hardware", "t4", "--fuse", "bogus"], "unknown fusion rule 'bogus'"),
        (["--hardware", "t4", "--fuse", "-f", "latex"], "--fuse takes one MODEL"),
    ],
)
def test_cli_fuse_errors(capsys: pytest.CaptureFixture[str], fake: None, argv: list[str],
                         message: str) -> None:
    code, _, err = run(capsys, "analyze", "m", *argv)
    assert code == 2 and message in one_error(err)
