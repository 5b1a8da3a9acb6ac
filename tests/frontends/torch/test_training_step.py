"""A whole training step traced: the optimizer's real ops (phase ``optimizer``), memory by
category from the trace, frozen parameters, gradient accumulation; figures derived by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modelmeter.errors import InputError
from modelmeter.usecases.train import train

IN, HID, OUT, B = 64, 128, 32, 8
# parameters: 64*128 + 128 + 128*32 + 32 = 8,192 + 128 + 4,096 + 32 = 12,448
N = IN * HID + HID + HID * OUT + OUT
TENSORS = 4  # two weights, two biases


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, HID), nn.ReLU(), nn.Linear(HID, OUT))


def matmul_macs(result, phase: str) -> int:  # noqa: ANN001
    return sum(
        rec.cost.macs for node in result.report.modules() for rec in node.ops
        if rec.phase == phase
    )  # fmt: skip


def test_mixed_precision_adam_keeps_16_bytes_per_parameter() -> None:
    r = train(mlp(), (B, IN), optimizer="adam", precision="bf16-mixed")
    c = r.categories
    assert c["weights"] == 2 * N == 24_896  # bf16 weights: 2 B x 12,448
    assert c["gradients"] == 2 * N == 24_896  # bf16 gradients
    assert c["master weights"] == 4 * N == 49_792  # fp32 master copies
    assert r.memory.states == {"exp_avg": 4 * N, "exp_avg_sq": 4 * N}  # fp32 m and v
    # 2 + 2 + 4 + 4 + 4 = 16 bytes per parameter: 16 x 12,448 = 199,168
    assert r.model_states == 16 * N == 199_168
    assert r.bytes_per_trainable == 16.0
    # Adam's step counters: one fp32 scalar per parameter tensor, on the host: 4 x 4 = 16 B
    assert r.memory.host_states == 16


def test_fp32_and_pure_bf16_adamw_and_sgd_state() -> None:
    # fp32 AdamW: 4 weights + 4 grads + 4 m + 4 v = 16 B per parameter, no master copy
    r = train(mlp(), (B, IN), optimizer="adamw", precision="fp32")
    assert (r.categories["master weights"], r.model_states) == (0, 16 * N)
    # pure bf16 AdamW: every tensor in bf16, 2 + 2 + 2 + 2 = 8 B per parameter
    r = train(mlp(), (B, IN), optimizer="adamw", precision="bf16")
    assert r.model_states == 8 * N
    # SGD with momentum, fp32: 4 weights + 4 grads + 4 momentum = 12 B per parameter
    r = train(mlp(), (B, IN), optimizer="sgd", precision="fp32")
    assert r.memory.states == {"momentum_buffer": 4 * N}
    assert r.model_states == 12 * N


# Optimizer FLOPs per element, from the update rules as torch.optim runs them (steady state):
# SGD (momentum mu, no dampening):   b = mu*b (1); b = b + g (1); p = p - lr*b (2)      = 4
# Adam: m = lerp(m, g, 1-b1) = m + (1-b1)*(g - m) (3); v = b2*v (1);
#       v = v + (1-b2)*g*g (3); d = sqrt(v) (1); d = d / sqrt(1-b2^t) (1); d = d + eps (1);
#       p = p - (lr/(1-b1^t)) * m / d (3)                                                = 13
#       and step += 1 once per parameter tensor (4 tensors: 4 FLOPs)
# AdamW: Adam's 13 and the decoupled decay p = p*(1 - lr*wd) (1)                        = 14
@pytest.mark.parametrize(
    ("optimizer", "per_element", "per_tensor"), [("sgd", 4, 0), ("adam", 13, 1), ("adamw", 14, 1)]
)
@pytest.mark.parametrize("variant", ["foreach", "for-loop", "fused"])
def test_optimizer_flops_per_parameter(optimizer: str, per_element: int, per_tensor: int,
                                       variant: str) -> None:  # fmt: skip
    r = train(mlp(), (B, IN), optimizer=optimizer, variant=variant)
    assert r.phases["optimizer"].flops == per_element * N + per_tensor * TENSORS
    assert r.phases["optimizer"].macs == 0
    if variant == "fused":  # fused kernels need a real device: counted as foreach, said so
        assert r.variant == "foreach"
        assert any("fused" in n and "meta" in n for n in r.notes)


# Optimizer bytes per element in fp32 (4 B each; unfused: each op reads its distinct inputs
# and writes its output once):
# SGD: b*=mu r4 w4; b+=g r8 w4; p-=lr*b r8 w4                                 = read 20, write 12
# Adam: lerp(m,g) r8 w4; v*=b2 r4 w4; addcmul(v,g,g) r8 w4 (g read once); sqrt r4 w4;
#       div r4 w4; +eps r4 w4; addcdiv(p,m,d) r12 w4                          = read 44, write 28
# AdamW: Adam's and p*=(1-lr*wd) r4 w4                                        = read 48, write 32
# per tensor, the step counter: read 4 (for-loop: add 1; foreach: also the tensor 1, 8), write 4
@pytest.mark.parametrize(
    ("optimizer", "read", "write", "step_read"),
    [("sgd", 20, 12, 0), ("adam", 44, 28, 8), ("adamw", 48, 32, 8)],
)
def test_optimizer_bytes_per_parameter(optimizer: str, read: int, write: int,
                                       step_read: int) -> None:  # fmt: skip
    c = train(mlp(), (B, IN), optimizer=optimizer).phases["optimizer"]
    assert c.bytes_read == read * N + step_read * TENSORS
    assert c.bytes_written == write * N + (4 if step_read else 0) * TENSORS


def test_mixed_precision_step_casts_gradients_and_copies_weights_back() -> None:
    # bf16-mixed AdamW adds, per element: grad bf16 -> fp32 (read 2, write 4) and the weight
    # copied back from the master (read 4, write 2): read 48 + 6 = 54, write 32 + 6 = 38
    c = train(mlp(), (B, IN), optimizer="adamw", precision="bf16-mixed").phases["optimizer"]
    assert c.flops == 14 * N + TENSORS
    assert c.bytes_read == 54 * N + 8 * TENSORS
    assert c.bytes_written == 38 * N + 4 * TENSORS


# Matmul MACs of the 8 x 64 -> 128 -> 32 MLP:
# forward: 8*64*128 + 8*128*32 = 65,536 + 32,768 = 98,304
# backward: layer 2: grad of its input 8*32*128 = 32,768 and of its weight 32,768;
#           layer 1: grad of its weight 65,536; grad of its input skipped (the batch needs none)
#           = 131,072 = 2 x forward - 65,536
def test_step_matmul_macs_are_three_times_the_forward_less_what_is_not_needed() -> None:
    r = train(mlp(), (B, IN))
    assert matmul_macs(r, "forward") == 98_304
    assert matmul_macs(r, "backward") == 131_072 == 2 * 98_304 - 65_536


def test_frozen_layers_skip_their_weight_gradients_and_get_no_state() -> None:
    # frozen second layer: its weight gradient (32,768 MACs) is skipped; its input gradient
    # is still needed by layer 1: backward = 32,768 + 65,536 = 98,304
    m = mlp()
    m[2].requires_grad_(False)
    r = train(m, (B, IN), optimizer="adamw")
    assert matmul_macs(r, "backward") == 98_304
    trainable = IN * HID + HID  # 8,320: only layer 1
    assert r.params == (N, trainable)
    assert r.categories["gradients"] == 4 * trainable
    assert r.memory.states == {"exp_avg": 4 * trainable, "exp_avg_sq": 4 * trainable}
    # frozen first layer: nothing before layer 2 needs a gradient: only layer 2's weight
    # gradient, 32*8*128 = 32,768
    m = mlp()
    m[0].requires_grad_(False)
    assert matmul_macs(train(m, (B, IN)), "backward") == 32_768


def test_lora_adapters_via_peft_train_only_the_adapters() -> None:
    peft = pytest.importorskip("peft")
    base = mlp()
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["0", "2"])
    model = peft.get_peft_model(base, cfg)
    r = train(model, (B, IN), optimizer="adamw")
    # adapters: A (4 x in) and B (out x 4) per layer: 4*64 + 128*4 + 4*128 + 32*4 = 1,408
    lora = 4 * IN + HID * 4 + 4 * HID + OUT * 4
    assert r.params == (N + lora, lora)
    assert r.categories["gradients"] == 4 * lora
    assert sum(r.memory.states.values()) == 8 * lora
    # the frozen base weights get no weight gradient: backward has no 128 x 64 weight-shaped
    # product (the base layer 1's 65,536 MACs); it is less than the full fine-tune's
    assert matmul_macs(r, "backward") < 131_072


def test_gradient_accumulation_multiplies_exactly() -> None:
    one = train(mlp(), (B, IN), optimizer="sgd", accumulate=1)
    four = train(mlp(), (B, IN), optimizer="sgd", accumulate=4)
    assert four.phases["forward"] == one.phases["forward"] * 4
    # micro-batches 2..4 add their gradient into .grad: 3 x 12,448 adds (1 FLOP each), each
    # reading grad and new (8 B) and writing grad (4 B)
    b4, b1 = four.phases["backward"], one.phases["backward"]
    extra = (b4.flops - 4 * b1.flops, b4.bytes_read - 4 * b1.bytes_read,
             b4.bytes_written - 4 * b1.bytes_written)  # fmt: skip
    assert extra == (3 * N, 3 * 8 * N, 3 * 4 * N)
    assert four.phases["optimizer"] == one.phases["optimizer"]  # one step


def test_peak_of_a_tiny_step_by_hand() -> None:
    # Linear(4 -> 3, no bias), batch 2, fp32, SGD with momentum:
    # static: weight 3*4*4 = 48 B + momentum buffer 48 B = 96 B
    # live: input 2*4*4 = 32; output 2*3*4 = 24; backward seed (ones) 24; weight gradient
    # 48 -> 32 + 24 + 24 + 48 = 128 at the backward's mm; the SGD step is in place
    # peak = 96 + 128 = 224 B, in the backward
    r = train(nn.Linear(4, 3, bias=False), (2, 4), optimizer="sgd")
    assert r.memory.static == 96
    assert r.memory.activations == 24  # the output (the saved input is the batch's own)
    assert (r.peak.bytes, r.peak.phase, r.peak.op) == (224, "backward", "aten.mm")
    # with 2 micro-batches the gradient exists before the second one's backward makes its
    # new one: 96 + 32 + 24 + 24 + 48 (the new gradient) + 48 (the held one) = 272
    r2 = train(nn.Linear(4, 3, bias=False), (2, 4), optimizer="sgd", accumulate=2)
    assert (r2.peak.bytes, r2.peak.later) == (272, True)


def test_the_users_model_is_left_as_it_was() -> None:
    m = mlp().eval()  # the step runs it in training mode; its own mode is put back
    before = {k: v.clone() for k, v in m.state_dict().items()}
    train(m, (B, IN), optimizer="adamw", precision="bf16-mixed")
    assert not any(mod.training for mod in m.modules())
    assert all(p.grad is None and p.requires_grad and p.device.type == "cpu"
               for p in m.parameters())  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert all(v.dtype == torch.float32 for v in m.state_dict().values())


def test_bad_setups_are_one_line_input_errors() -> None:
    with pytest.raises(InputError, match="unknown optimizer 'lamb'"):
        train(mlp(), (B, IN), optimizer="lamb")
    with pytest.raises(InputError, match="unknown precision 'fp8-mixed'"):
        train(mlp(), (B, IN), precision="fp8-mixed")
    m = mlp().requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        train(m, (B, IN))
    with pytest.raises(InputError, match="accumulate"):
        train(mlp(), (B, IN), accumulate=0)


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_forward_and_backward_match_flop_counter_mode(which: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    def make() -> nn.Module:
        torch.manual_seed(0)
        if which == "mlp":
            return mlp()
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))

    shape = (B, IN) if which == "mlp" else (2, 3, 8, 8)
    real = make()
    with FlopCounterMode(display=False) as fcm:
        out = real(torch.randn(shape))
        out.backward(torch.ones_like(out))  # the traced step's seed
    r = train(make(), shape, convention="2mac")
    # FlopCounterMode counts the products of the forward and the backward as 2 x MACs (not
    # the convolution's bias gradient, a sum that the formula counts among its FLOPs)
    macs = matmul_macs(r, "forward") + matmul_macs(r, "backward")
    assert 2 * macs == fcm.get_total_flops()


def test_the_largest_batch_that_fits() -> None:
    from dataclasses import replace

    from modelmeter.hardware import load_spec

    # Linear(4 -> 3, no bias), SGD: peak(b) = 96 static + input 16b + output 12b + seed 12b
    # + weight gradient 48 = 144 + 40b; a 1,000-byte chip: 144 + 40b <= 1000 -> b = 21
    chip = replace(load_spec("h100-sxm"), capacity=1000.0)
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", hardware=chip,
              max_batch=True)  # fmt: skip
    assert (r.max_batch, r.samples, r.peak.bytes) == (21, 21, 144 + 40 * 21)
    # 140 bytes: not even batch 1 (184 B) fits
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", max_batch=True,
              hardware=replace(chip, capacity=140.0))  # fmt: skip
    assert (r.max_batch, r.samples) == (0, 1)
    with pytest.raises(InputError, match="needs a chip"):
        train(nn.Linear(4, 3), (1, 4), max_batch=True)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(64, 256), nn.Linear(256, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


class _Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_Block() for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def test_activation_checkpointing_recomputes_and_frees() -> None:
    m = _Stack()
    plain = train(m, (8, 64), optimizer="sgd")
    ckpt = train(m, (8, 64), optimizer="sgd", checkpointing=True)
    # saved without checkpointing, per block: its input 8*64*4 = 2,048 B and the ReLU's
    # output 8*256*4 = 8,192 B (block 0's input is the batch; the output, 2,048, counts):
    # 4 * 10,240 = 40,960
    assert plain.memory.activations == 40_960
    # checkpointed: only the blocks' inputs (3 x 2,048) and the output (2,048) = 8,192
    assert ckpt.memory.activations == 8_192
    # the recomputation stops once the backward has what it needs (PyTorch's early stop):
    # per block Linear a, 8*64*256 = 131,072 MACs, 262,144 FLOPs with its bias, and the ReLU
    # 8*256 = 2,048: 264,192; x 4 blocks = 1,056,768 FLOPs (the second Linear and the add
    # do not run again)
    rec = ckpt.phases["recompute"]
    assert (rec.macs, rec.flops) == (4 * 131_072, 1_056_768)
    assert ckpt.phases["backward"] == plain.phases["backward"]
    assert ckpt.phases["forward"] == plain.phases["forward"]
    assert "recompute" not in plain.phases
    # the model is not changed: no forward attribute left on the blocks, calls counted once
    assert all("forward" not in vars(b) for b in m.blocks)
    assert ckpt.report["blocks.0"].calls == 1


def test_checkpointing_needs_repeated_blocks() -> None:
    with pytest.raises(InputError, match="nn.ModuleList"):
        train(mlp(), (B, IN), checkpointing=True)


def test_recomputed_ops_are_in_their_blocks_and_nothing_is_left_alive() -> None:
    m = _Stack()
    r = train(m, (8, 64), optimizer="adam", checkpointing=True)
    plain = train(m, (8, 64), optimizer="adam")
    # every recomputed op runs in a block (block i's ReLU in blocks.i, its Linear in blocks.i.a)
    scopes = {n.name for n in r.report.modules() for o in n.ops if o.phase == "recompute"}
    assert scopes == {f"blocks.{i}{s}" for i in range(4) for s in ("", ".a")}
    # after the backward the recomputation has left nothing alive: the optimizer's step peaks
    # as without checkpointing
    assert r.peak == plain.peak


# Adafactor (torch.optim.Adafactor, factored second moments), from its update rule as
# torch runs it, for an n x m weight: step += 1 (1); ||p|| (2nm: square, add, sqrt);
# row norms of g (2nm), squared (n), / m (n), row_var lerp (3n); column norms (2nm), squared
# (m), / n (m), col_var lerp (3m); row_var @ col_var (n*m products of one term: nm); the row
# mean (n) clamped (1); the estimate / it (nm), clamped (nm), rsqrt (nm), * g (nm); ||update||
# (2nm); p += alpha * update (2nm)       = 15nm + 6n + 5m + 2
# and for a vector of k: step 1, ||p|| 2k, g*g k, lerp 3k, clamp k, rsqrt k, * g k, ||update||
# 2k, p += alpha * update 2k             = 13k + 1
@pytest.mark.parametrize("variant", ["foreach", "for-loop"])
def test_adafactor_is_factored(variant: str) -> None:
    r = train(nn.Linear(3, 4), (2, 3), optimizer="adafactor", variant=variant)
    n, m, k = 4, 3, 4  # weight 4 x 3, bias 4
    assert r.phases["optimizer"].flops == (15 * n * m + 6 * n + 5 * m + 2) + (13 * k + 1) == 274
    # its states: a row and a column of fp32 for the matrix, a full fp32 vector for the bias
    assert r.memory.states == {"row_var": 4 * n, "col_var": 4 * m, "variance": 4 * k}
    assert any(".item()" in note for note in r.notes)
