"""bitsandbytes' 8-bit Adam and AdamW in a traced training step: the real optimizer on meta
copies, its kernels counted (``ops/bnb_optim.py``), its state tensors as memory; figures
derived by hand. Skipped where bitsandbytes is not installed (the refusal is tested in
tests/commands/test_train_8bit_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.usecases.train import train

pytest.importorskip("bitsandbytes")

OP8 = "bitsandbytes.optimizer_update_8bit_blockwise"
OP32 = "bitsandbytes.optimizer_update_32bit"
W, BIAS = 4096 * 4096, 4096  # Linear(4096, 4096): 16,777,216 + 4,096 parameters
N = W + BIAS  # 16,781,312
# the absmax of each state: one float32 per 256-element block: 65,536 + 16 = 65,552 blocks,
# 262,208 bytes; the two 256-entry float32 code maps, shared by every tensor: 2 x 1,024 B
ABSMAX = 4 * (W // 256 + BIAS // 256)
QMAPS = 2 * 256 * 4


def linear() -> nn.Module:
    return nn.Linear(4096, 4096)


def calls(r) -> dict[str, int]:  # noqa: ANN001
    return {k: v.calls for k, v in r.report.by_operator().items()}


def test_adamw8bit_fp32_states_flops_and_bytes() -> None:
    r = train(linear(), (1, 4096), optimizer="adamw8bit", precision="fp32")
    # the bias has 4,096 elements, not fewer than min_8bit_size (4,096): 8-bit like the weight
    ops = calls(r)
    assert ops.get(OP8) == 2 and OP32 not in ops
    # uint8 states: 1 B per parameter each (16,781,312); absmax 262,208 B each; code maps
    assert ABSMAX == 262_208
    assert r.memory.states == {"state1": N, "state2": N, "absmax1": ABSMAX, "absmax2": ABSMAX,
                               "qmap1": 1024, "qmap2": 1024}  # fmt: skip
    # the optimizer's FLOPs: AdamW 14 + dequantise 2 + new absmax 4 + requantise 24 = 44 per
    # element: 44 x 16,781,312 = 738,377,728
    opt = r.phases["optimizer"]
    assert opt.flops == 44 * N == 738_377_728
    # read: g 4 + p 4 + states 2 = 10 B per element = 167,813,120; absmax 2 x 262,208 =
    # 524,416; the code maps once per tensor: 2 tensors x 2,048 = 4,096 -> 168,341,632
    # written: p 4 + states 2 = 6 B per element = 100,687,872 + absmax 524,416 = 101,212,288
    assert (opt.bytes_read, opt.bytes_written) == (168_341_632, 101_212_288)
    assert r.variant == "fused"
    # fp32: weights 4 + gradients 4 + states 2 B per parameter, absmax and code maps:
    # 10 x 16,781,312 + 524,416 + 2,048 = 168,339,584
    assert r.model_states == 10 * N + 2 * ABSMAX + QMAPS == 168_339_584


def test_adamw8bit_bf16_mixed_and_pure_bf16_bytes_per_parameter() -> None:
    states = 2 * N + 2 * ABSMAX + QMAPS  # 33,562,624 + 524,416 + 2,048 = 34,089,088
    assert states == 34_089_088
    r = train(linear(), (1, 4096), optimizer="adamw8bit", precision="bf16-mixed")
    c = r.categories
    # bf16 weights 2 + bf16 gradients 2 + fp32 master 4 per parameter, the 8-bit states
    assert (c["weights"], c["gradients"], c["master weights"]) == (2 * N, 2 * N, 4 * N)
    assert sum(r.memory.states.values()) == states
    # (8 x 16,781,312 + 34,089,088) / 16,781,312 = 168,339,584 / 16,781,312 = 10.0313...
    assert r.model_states == 8 * N + states == 168_339_584
    assert r.bytes_per_trainable == pytest.approx(168_339_584 / N) == pytest.approx(10.0313, 1e-4)
    # the update runs on the fp32 masters: the same 44 FLOPs per element; the mixed step's
    # cast of the gradients to fp32 and copy-back of the weights are copies: no FLOPs
    assert r.phases["optimizer"].flops == 44 * N
    # pure bf16: no masters; bitsandbytes updates the bf16 weights from bf16 gradients with
    # the same uint8 states: (2 + 2) x 16,781,312 + 34,089,088 = 101,214,336, 6.03 B each
    r = train(linear(), (1, 4096), optimizer="adamw8bit", precision="bf16")
    assert r.categories["master weights"] == 0
    assert r.model_states == 4 * N + states == 101_214_336
    # read: g 2 + p 2 + states 2 = 6 B per element = 100,687,872, absmax 524,416, code maps
    # 4,096 -> 101,216,384; written: p 2 + states 2 = 67,125,248 + 524,416 = 67,649,664
    opt = r.phases["optimizer"]
    assert (opt.bytes_read, opt.bytes_written) == (101_216_384, 67_649_664)


def test_small_tensors_keep_32bit_states() -> None:
    # Linear(64, 100): weight 6,400 elements (8-bit: 25 blocks), bias 100 (< 4,096: fp32)
    r = train(nn.Linear(64, 100), (2, 64), optimizer="adam8bit")
    ops = calls(r)
    assert (ops.get(OP8), ops.get(OP32)) == (1, 1)
    # state1: 6,400 uint8 + 100 fp32 = 6,400 + 400 = 6,800 B (state2 the same); absmax
    # 25 x 4 = 100 B each
    assert r.memory.states == {"state1": 6_800, "state2": 6_800, "absmax1": 100,
                               "absmax2": 100, "qmap1": 1024, "qmap2": 1024}  # fmt: skip
    # Adam (no decay): 8-bit 13 + 30 = 43 x 6,400 = 275,200; 32-bit 13 x 100 = 1,300
    assert r.phases["optimizer"].flops == 43 * 6_400 + 13 * 100 == 276_500
    assert any("1 parameter tensors of fewer than 4,096" in n for n in r.notes)


def test_other_bitsandbytes_ops_are_unsupported_not_zero() -> None:
    class Dequantize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("code", torch.zeros(256))
            self.register_buffer("absmax", torch.ones(16))

        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return torch.ops.bitsandbytes.dequantize_blockwise(a, self.absmax, self.code, 256,
                                                               torch.float32)  # fmt: skip

    r = modelmeter.analyze(Dequantize(), "4096:uint8")
    assert r.unsupported == {"bitsandbytes.dequantize_blockwise": 1}


def test_importing_bitsandbytes_says_nothing() -> None:
    # a fresh interpreter: bitsandbytes' import logs a warning about an optional CPU kernel
    # package; the loader keeps it (and any print) from the user
    src = str(Path(modelmeter.__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {src!r}); import logging; "
            "from modelmeter.frontends.torch.bnb_optimizers import load_optim; load_optim(); "
            "assert logging.getLogger('bitsandbytes').level == logging.NOTSET")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_warm_state_equals_a_full_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # the untraced warm-up skips in-place updates of meta tensors: the states it leaves (8-bit
    # for the 4,096-element tensor, fp32 for the 8-element one) are a full step's
    from modelmeter.events import StepSetup
    from modelmeter.frontends.torch import optimizers

    def params() -> list[torch.Tensor]:
        return [torch.empty(s, device="meta", requires_grad=True) for s in ((64, 64), (8,))]

    def state(opt) -> list[tuple]:  # noqa: ANN001
        return [(k, tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else (k, v)
                for s in opt.state.values() for k, v in sorted(s.items())]  # fmt: skip

    setup = StepSetup("adamw8bit", "foreach", "fp32")
    skipped, _ = optimizers.build_optimizer(setup, params())
    monkeypatch.setattr(optimizers, "_WarmStep", optimizers.MetaItems)  # every op runs
    full, _ = optimizers.build_optimizer(setup, params())
    assert state(skipped) == state(full)
    # 64 x 64 = 4,096 elements: uint8 states, 16 blocks; 8 elements: fp32 states
    assert ("state1", (64, 64), torch.uint8) in state(full)
    assert ("absmax1", (16,), torch.float32) in state(full)
    assert ("state1", (8,), torch.float32) in state(full)


def test_variant_does_not_apply() -> None:
    # bitsandbytes has one implementation: any --variant counts the same, reported as fused
    a = train(nn.Linear(64, 100), (2, 64), optimizer="adamw8bit", variant="for-loop")
    b = train(nn.Linear(64, 100), (2, 64), optimizer="adamw8bit", variant="foreach")
    assert (a.variant, b.variant) == ("fused", "fused")
    # AdamW: 44 x 6,400 (8-bit weight) + 14 x 100 (fp32 bias) = 281,600 + 1,400 = 283,000
    assert a.phases["optimizer"] == b.phases["optimizer"]
    assert a.phases["optimizer"].flops == 283_000


def test_the_model_is_left_as_it_was() -> None:
    torch.manual_seed(0)
    model = nn.Linear(64, 100)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, (2, 64), optimizer="adamw8bit", precision="bf16-mixed")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == torch.float32
               for k in before)  # fmt: skip
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
