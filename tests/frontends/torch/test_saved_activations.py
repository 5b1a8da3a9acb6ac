"""Saved activations of a GPT-style layer, traced, against Korthikanti et al. 2022
("Reducing Activation Recomputation in Large Transformer Models"): s*b*h*(34 + 5*a*s/h)
bytes in half precision without recomputation. docs/training.md explains the difference."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from modelmeter.usecases.train import train


class GPTLayer(nn.Module):
    """The layer the paper counts: pre-norm attention (math path: scores, softmax, dropout)
    and a 4h GeLU MLP, dropout after both, residuals."""

    def __init__(self, h: int, a: int, p: float = 0.1) -> None:
        super().__init__()
        self.a, self.p = a, p
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=-1)
        q, k, v = (t.view(b, s, self.a, h // self.a).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(h // self.a), dim=-1)
        att = F.dropout(att, self.p, self.training)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, h)
        x = x + F.dropout(self.proj(ctx), self.p, self.training)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p, self.training)


def test_a_gpt_layer_saves_korthikanti_s_activations_and_the_differences_are_known() -> None:
    b, s, h, a = 2, 64, 128, 4
    sbh = s * b * h  # 16,384
    r = train(GPTLayer(h, a), (b, s, h), precision="bf16", optimizer="sgd")
    # the paper, half precision: 34 sbh + 5 a s^2 b = 557,056 + 163,840 = 720,896 bytes
    paper = 34 * sbh + 5 * a * s * s * b
    assert paper == 720_896
    # the trace (a layer's output, 2 sbh, stands for the next layer's input the paper counts
    # as this layer's first LayerNorm input) holds in addition:
    # - the attention dropout's mask in bf16 (2 bytes, the CPU kernel's) instead of 1 byte:
    #   a s^2 b = 32,768
    # - the two hidden dropouts' masks in bf16 instead of 1 byte: 2 sbh = 32,768
    # - each LayerNorm's mean and 1/std, fp32 per token: 2 LN x 2 x s b x 4 = 2,048
    extra = a * s * s * b + 2 * sbh + 2 * 2 * s * b * 4
    assert r.memory.activations == paper + extra == 788_480


def test_the_saved_activations_are_attributed_to_the_module_whose_op_made_them() -> None:
    b, s, h, a = 2, 64, 128, 4
    sbh = s * b * h  # 16,384 elements; 32,768 bytes in bf16
    r = train(GPTLayer(h, a), (b, s, h), precision="bf16", optimizer="sgd")
    by = r.memory.saved_by_scope
    # fc1's output, saved by the GeLU: s b 4h in bf16 = 2 x 16,384 x 4 = 131,072
    assert by["fc1"] == 2 * sbh * 4 == 131_072
    # each LayerNorm: its output (saved by the next Linear) 2 sbh = 32,768, plus mean and
    # 1/std in fp32 per token 2 x s b x 4 = 1,024: 33,792
    assert by["ln1"] == by["ln2"] == 2 * sbh + 2 * s * b * 4 == 33_792
    # qkv/proj/fc2's outputs die (the matmuls save contiguous copies of q, k, v made in the
    # layer's own forward; the dropouts save masks): nothing attributed to them
    assert "qkv" not in by and "proj" not in by and "fc2" not in by
    # the layer's own ops (scope ""): q, k^T, v copies 3 x 32,768; softmax output, dropout
    # mask (bf16) and dropped scores 3 x a s^2 b x 2 = 3 x 65,536; ctx copy 32,768; two hidden
    # masks 2 x 32,768; the residual x 32,768; GeLU output 131,072; the output 32,768
    own = 3 * 2 * sbh + 3 * 2 * a * s * s * b + 2 * sbh + 2 * 2 * sbh + 2 * sbh + 8 * sbh
    assert by[""] == own + 2 * sbh == 589_824
    # the attribution splits the activations row exactly
    assert sum(by.values()) == r.memory.activations == 788_480
