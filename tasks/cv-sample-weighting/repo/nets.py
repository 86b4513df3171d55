"""The fixed classifiers (the same code builds them in the training process and in the parent
that evaluates). No buffers: every state entry is a parameter that only the parent's optimizer
moves."""

from __future__ import annotations

import math

import torch
from torch import nn


def build(arch: str, in_shape: list, n_classes: int) -> nn.Module:
    """A small MLP on the flattened image, or a small CNN (two 3x3 conv blocks)."""
    c, h, w = (int(s) for s in in_shape)
    if arch == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * h * w, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, n_classes),
        )
    if arch == "cnn":
        side = math.floor(math.floor(h / 2) / 2)
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * side * side, 64), nn.ReLU(),
            nn.Linear(64, n_classes),
        )
    raise ValueError(f"unknown architecture {arch!r}")


def logits(net: nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """The network's outputs on ``x`` in evaluation mode, in batches."""
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)])
