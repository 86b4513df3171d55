"""Target classifiers (fixed file). Weights are stored as float16 in weights/*.npz and run in
float32 on CPU. Only the harness's parent process builds a model; the attack never sees one."""
from __future__ import annotations

import importlib

import numpy as np
import torch
import torch.nn as nn


class MLP(nn.Module):
    """Fully connected ReLU network on the flattened image."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], n_classes: int = 10):
        super().__init__()
        layers, d = [nn.Flatten()], in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """Two 3x3 conv + ReLU + 2x2 max-pool blocks, then a linear classifier."""

    def __init__(self, side: int, channels: tuple[int, int] = (16, 32), n_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(c2 * (side // 4) ** 2, n_classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def build(arch: str, side: int) -> nn.Module:
    """An untrained network of the named architecture for side x side grey images."""
    if arch == "mlp":
        return MLP(side * side, (64,) if side <= 8 else (128,))
    if arch == "cnn":
        return CNN(side, (16, 32))
    # architectures that are not defined here live in a module named after them
    return importlib.import_module(f"arch_{arch}").build(side)


def state_to_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float16) for k, v in model.state_dict().items()}


def load(arch: str, side: int, path: str) -> nn.Module:
    model = build(arch, side)
    with np.load(path, allow_pickle=False) as z:
        state = {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files}
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
