"""LoRA (Hu et al., 2021; the book's appendix E): train a low-rank update beside frozen weights,
then merge it in, so the exported graph is as small and fast as any other."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from spamkit.training.model import GPTClassifier

# The linear layers of every block; the new class head is trained in full instead.
TARGETS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


class LoRALinear(nn.Module):
    """y = base(x) + (alpha / rank) * x A B, with A random and B zero so training starts at base."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(base.in_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(rank, base.out_features))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A @ self.B) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        linear = nn.Linear(self.base.in_features, self.base.out_features)
        linear.weight.copy_(self.base.weight + self.scale * (self.A @ self.B).T)
        linear.bias.copy_(self.base.bias)
        return linear


def _replace(model: GPTClassifier, make) -> None:
    for block in model.h:
        for path in TARGETS:
            parent_name, child = path.split(".")
            parent = getattr(block, parent_name)
            setattr(parent, child, make(getattr(parent, child)))


def add_lora(model: GPTClassifier, rank: int, alpha: float) -> None:
    """Freeze the model, wrap each block's linear layers in LoRA, keep the head trainable."""
    model.requires_grad_(False)
    _replace(model, lambda linear: LoRALinear(linear, rank, alpha))
    model.head.requires_grad_(True)


def merge_lora(model: GPTClassifier) -> None:
    """Fold every adapter into its base weight: plain nn.Linear layers again."""
    _replace(model, lambda m: m.merged() if isinstance(m, LoRALinear) else m)
