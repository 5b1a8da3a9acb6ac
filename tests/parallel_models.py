"""A tiny layered model for the tensor/pipeline-parallel and device-sweep tests."""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8, bias=False)  # 64 parameters, split
        self.ln = nn.LayerNorm(8)  # 16, replicated

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.ln(x + self.fc(x))


class Tiny(nn.Module):
    """Embedding 100 x 8 (800), 4 blocks (4 x 80), head 8 -> 100 (800): 1,920 parameters, of
    which 1,856 in split modules (800 + 4 x 64 + 800) and 64 replicated (the LayerNorms).
    ``vocab``: the embedding's rows (the head keeps 100 outputs)."""

    num_heads = 4

    def __init__(self, vocab: int = 100) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.layers = nn.ModuleList(Block() for _ in range(4))
        self.head = nn.Linear(8, 100, bias=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        x = self.emb(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)
