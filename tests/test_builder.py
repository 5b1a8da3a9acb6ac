"""The core pipeline: parameters, bytes, activation memory, tree, dtype, round trip."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

import modelmeter
from modelmeter.report import Report


def test_seed_example_conv_5x5_3_to_16_has_1216_params() -> None:
    # 5*5*3*16 + 16 = 1216 (the source document's example, input 96x96x3)
    r = modelmeter.analyze(nn.Conv2d(3, 16, 5), "1x3x96x96")
    assert r.total().params == 1216
    # output 92x92x16; MACs = 3*5*5 * 92*92*16 = 75*135424 = 10_156_800
    assert r.total().cost.macs == 10_156_800
    # with bias, the seed's FLOPs = 2*Ci*K^2 * H*W*Co = 150*135424 = 20_313_600
    assert r.total().cost.flops == 20_313_600


def test_linear_chain_bytes_and_activation_memory() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 5))
    r = modelmeter.analyze(model, "4x10")
    t = r.total()
    # params: 10*20+20 + 20*5+5 = 220 + 105 = 325
    assert t.params == 325 and t.trainable_params == 325 and t.buffers == 0
    # MACs: 4*10*20 + 4*20*5 = 800 + 400 = 1200; exact FLOPs (bias) = 2*MACs = 2400
    assert (t.cost.macs, t.cost.flops) == (1200, 2400)
    # reads: x 160 + W1 800 + b1 80 ; h 320 + W2 400 + b2 20  -> 1780 ; weights 1300
    assert t.cost.bytes_read == 1780 and t.cost.weight_bytes == 1300
    # writes: h 4*20*4 = 320 ; y 4*5*4 = 80 -> 400
    assert t.cost.bytes_written == 400
    # outputs allocated: 320 + 80 = 400 ; peak live: x 160 + h 320 + y 80 = 560
    assert t.activation_bytes == 400
    assert t.peak_activation_bytes == 560


def test_peak_is_below_sum_when_tensors_die() -> None:
    # Five 100-float linear layers in a row: each output (4x100x4 = 1600 B) frees the previous.
    model = nn.Sequential(*[nn.Linear(100, 100) for _ in range(5)])
    t = modelmeter.analyze(model, "4x100").total()
    assert t.activation_bytes == 5 * 1600
    # at most input + two layer outputs live at once: 3*1600 = 4800
    assert t.peak_activation_bytes == 4800


def test_params_shared_once_buffers_apart_frozen_counted() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Linear(8, 8, bias=False)
            self.head = nn.Linear(8, 8, bias=False)
            self.head.weight = self.emb.weight  # shared: counted once
            self.bn = nn.BatchNorm1d(8)
            self.bn.weight.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.bn(self.emb(x)))

    r = modelmeter.analyze(Tied().eval(), "2x8")
    t = r.total()
    # 8*8 shared weight + BN gamma 8 + beta 8 = 80 ; frozen gamma 8 -> trainable 72
    assert t.params == 80 and t.trainable_params == 72
    # buffers: running_mean 8 + running_var 8 + num_batches_tracked 1 = 17
    assert t.buffers == 17
    # the shared linear is called twice through two names; its weight is owned by `emb`
    by_name = {n.name: n for n in r.modules()}
    assert by_name["emb"].own.params == 64 and by_name["head"].own.params == 0


def test_googlenet_unused_aux_parameters() -> None:
    # torchvision GoogLeNet without weights keeps its aux classifiers, which eval() never runs:
    # 13.0 M parameters of which 6.6 M are read in the forward.
    m = torchvision.models.googlenet(init_weights=False).eval()
    t = modelmeter.analyze(m, "1x3x224x224").total()
    assert t.params == 13_004_888  # torchvision's published num_params is 6,624,904 (no aux)
    assert t.params - t.unused_params == 6_624_904


def test_shared_module_counted_per_call() -> None:
    lin = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = lin

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(self.lin(x))

    r = modelmeter.analyze(Twice(), "1x4")
    node = next(n for n in r.modules() if n.name == "lin")
    assert node.calls == 2
    # 2 calls * 1*4*4 MACs = 32
    assert r.total().cost.macs == 32


def test_dtype_changes_bytes_not_counts() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 5))
    fp32 = modelmeter.analyze(model, "4x10").total()
    bf16 = modelmeter.analyze(model, "4x10", dtype="bf16")
    t = bf16.total()
    assert (t.cost.macs, t.cost.flops) == (fp32.cost.macs, fp32.cost.flops)
    assert t.cost.bytes_read * 2 == fp32.cost.bytes_read
    assert t.cost.bytes_written * 2 == fp32.cost.bytes_written
    assert bf16.inputs[0].dtype == "bfloat16"
    assert model[0].weight.dtype == torch.float32  # the user's model is untouched
    # the op records carry the compute dtype
    assert {o.dtype for n in bf16.modules() for o in n.ops} == {"bfloat16"}


def test_size_by_dtype() -> None:
    r = modelmeter.analyze(nn.Linear(10, 20), "1x10")
    # 220 params: fp64 1760, fp32 880, fp16/bf16 440, fp8/int8 220, int4 110
    size = r.size_by_dtype()
    assert size["float64"] == 1760 and size["float32"] == 880 and size["native"] == 880
    assert size["float16"] == size["bfloat16"] == 440
    assert size["float8_e4m3fn"] == size["int8"] == 220 and size["int4"] == 110


def test_tree_totals_add_up_and_depths() -> None:
    r = modelmeter.analyze(torchvision.models.resnet18(), "1x3x224x224")
    for node in r.modules():
        kids = node.children
        assert node.total_cost() == node.self_cost() + sum((k.total_cost() for k in kids),
                                                           modelmeter.Cost())
        for k in kids:
            assert k.depth == node.depth + 1
    assert r.root.total_cost() == r.total().cost
    names = [row.name for row in r.by_module(depth=1)]
    assert names[:3] == ["", "conv1", "bn1"] and "layer1.0" not in names


def test_report_json_round_trip() -> None:
    r = modelmeter.analyze(torchvision.models.resnet18(), "1x3x64x64")
    d = r.to_dict()
    assert d["schema"] == "modelmeter.report/1"
    again = Report.from_dict(d)
    assert again.to_dict() == d
    assert again.total() == r.total()


def test_plain_function_and_functional_matmul() -> None:
    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    r = modelmeter.analyze(f, ("2x3x4", "4x5"))
    # broadcast matmul (2,3,4)@(4,5): MACs = 2*3*4*5 = 120; exact FLOPs = (2*4-1)*2*3*5 = 210
    assert (r.total().cost.macs, r.total().cost.flops) == (120, 210)
    assert r.root.type == "f" and not r.unsupported


def test_two_mac_convention() -> None:
    r = modelmeter.analyze(nn.Linear(10, 20, bias=False), "4x10", convention="2mac")
    # 2mac: FLOPs = 2*MACs = 2*4*10*20 = 1600 (bias-free exact would be (2*10-1)*80 = 1520)
    assert r.total().cost.flops == 1600 and r.convention == "2mac"
    exact = modelmeter.analyze(nn.Linear(10, 20, bias=False), "4x10").total().cost.flops
    assert exact == 1520


def test_backward_phase_kept_apart_and_matches_flop_counter() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    m = torchvision.models.resnet18()
    r = modelmeter.analyze(m, "2x3x64x64", backward=True, convention="2mac")
    fwd_only = modelmeter.analyze(m, "2x3x64x64", convention="2mac")
    assert r.phases == ["forward", "backward"]
    assert r.total("forward").cost.macs == fwd_only.total().cost.macs
    # backward of conv/linear: grad_input and grad_weight each cost the forward MACs, except
    # the first conv, whose input needs no gradient: 2*fwd - conv1 MACs.
    conv1 = next(n for n in r.modules() if n.name == "conv1").self_cost("forward").macs
    assert r.total("backward").cost.macs == 2 * fwd_only.total().cost.macs - conv1
    with torch.device("meta"):
        mm = torchvision.models.resnet18()
    with FlopCounterMode(display=False) as fc:
        mm(torch.randn(2, 3, 64, 64, device="meta")).sum().backward()
    assert 2 * r.total().cost.macs == fc.get_total_flops()
    # backward ops are attributed to the module whose forward they differentiate
    fc_node = next(n for n in r.modules() if n.name == "fc")
    # d(input) and d(weight) of fc: 2 * (2*512*1000) = 2_048_000 MACs
    assert fc_node.self_cost("backward").macs == 2_048_000
    assert r.root.self_cost("backward").macs == 0


def test_import_does_not_load_torch_or_onnx() -> None:
    import subprocess
    import sys

    code = "import sys, modelmeter; print('torch' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_out_arguments_are_written_not_read() -> None:
    def f(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mul(a, b, out=out)

    r = modelmeter.analyze(f, ("6x10", "6x10", "6x10"))
    c = r.total().cost
    # reads a and b: 2*60*4 = 480 B; writes out: 60*4 = 240 B; 60 multiplies
    assert (c.flops, c.bytes_read, c.bytes_written) == (60, 480, 240)
