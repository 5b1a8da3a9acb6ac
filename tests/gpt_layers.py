"""GPT-style layers for the per-device activation tests: the layer Korthikanti et al. 2022
count (pre-norm attention on the math path: scores, softmax, dropout; a 4h GeLU MLP; dropout
after both; residuals) and a small model of such layers between an embedding and a head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class GPTLayer(nn.Module):
    def __init__(self, h: int, a: int, p: float = 0.1) -> None:
        super().__init__()
        self.num_heads, self.p = a, p
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        a = self.num_heads
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=-1)
        q, k, v = (t.view(b, s, a, h // a).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(h // a), dim=-1)
        att = F.dropout(att, self.p, self.training)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, h)
        x = x + F.dropout(self.proj(ctx), self.p, self.training)
        return x + F.dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p, self.training)


class GPT(nn.Module):
    """An embedding (vocabulary 50), ``n`` GPT layers and a final LayerNorm, token ids in;
    the last hidden states out (no head: the tests count the layers)."""

    def __init__(self, h: int, a: int, n: int) -> None:
        super().__init__()
        self.num_heads = a
        self.emb = nn.Embedding(50, h)
        self.layers = nn.ModuleList(GPTLayer(h, a) for _ in range(n))
        self.ln = nn.LayerNorm(h)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)
        for layer in self.layers:
            x = layer(x)
        return self.ln(x)
