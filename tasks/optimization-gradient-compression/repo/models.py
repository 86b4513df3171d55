"""Model builders (fixed)."""
from __future__ import annotations

import torch
from torch import nn


def build(spec, in_side):
    kind = spec["model"]
    if kind == "mlp":
        layers, d = [nn.Flatten()], in_side * in_side
        for h in spec["hidden"]:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, 10))
        return nn.Sequential(*layers)
    if kind == "cnn":
        layers, c, s = [], 1, in_side
        for ch in spec["channels"]:
            layers += [nn.Conv2d(c, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, s = ch, s // 2
        layers += [nn.Flatten(), nn.Linear(c * s * s, 10)]
        return nn.Sequential(*layers)
    raise ValueError(f"unknown model {kind!r}")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    import settings
    for k, v in settings.SETTINGS.items():
        torch.manual_seed(0)
        print(k, n_params(build(v, 8 if v["dataset"] == "digits" else 14)))
