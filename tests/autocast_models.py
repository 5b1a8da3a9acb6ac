"""The tiny model of the autocast tests: the ops a mixed-precision forward casts, each once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Tiny(nn.Module):
    """Linear 8 -> 16, LayerNorm, softmax, Linear 16 -> 4, cross-entropy against class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.norm(self.fc1(x)).softmax(-1)
        target = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return F.cross_entropy(self.fc2(p), target)
