"""The networks (fixed) and the child side of the harness.

A plain network has no normalization and no skip connections: a stack of `depth` weight layers
(Linear, or Conv2d 3x3), each but the last followed by the activation. `model.layers` lists
them in order from the input; the last one is the classifier. The harness parent builds the
same network, receives the initial values the child produced and trains them itself.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from taskkit import torchstate

SETTINGS = {
    "digits-mlp20": {
        "data": "digits", "arch": "mlp", "depth": 20, "width": 64, "activation": "relu",
        "n_train": 1297, "n_test": 500, "steps": 300, "batch": 64, "lr": 0.005,
    },
    "fashion-mlp30": {
        "data": "fashion", "arch": "mlp", "depth": 30, "width": 64, "activation": "relu",
        "n_train": 5000, "n_test": 2000, "steps": 300, "batch": 64, "lr": 0.005,
    },
    "digits-cnn20": {
        "data": "digits", "arch": "cnn", "depth": 20, "width": 12, "activation": "relu",
        "n_train": 1297, "n_test": 500, "steps": 250, "batch": 32, "lr": 0.01,
    },
}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
SIDES = {"digits": 8, "fashion": 14}


def check_spec(spec: dict) -> dict:
    need = ("data", "arch", "depth", "width", "activation", "n_train", "n_test", "steps")
    missing = [k for k in (*need, "batch", "lr") if k not in spec]
    if missing:
        raise ValueError(f"the setting's spec lacks {missing}")
    if spec["arch"] not in ("mlp", "cnn") or spec["activation"] not in ACTIVATIONS:
        raise ValueError(f"unknown arch or activation in {spec}")
    if spec["data"] not in SIDES or int(spec["depth"]) < 3:
        raise ValueError(f"unknown data set or depth below 3 in {spec}")
    return spec


class PlainNet(nn.Module):
    """`layers`: the weight layers in order (the last is the classifier); `activation`: the
    nonlinearity's name; `arch`: mlp or cnn."""

    def __init__(self, spec: dict):
        super().__init__()
        self.arch, self.activation = spec["arch"], spec["activation"]
        self.depth, self.width = int(spec["depth"]), int(spec["width"])
        side, w, act = SIDES[spec["data"]], self.width, ACTIVATIONS[self.activation]
        layers = []
        if self.arch == "mlp":
            sizes = [side * side] + [w] * (self.depth - 1)
            layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        else:
            # two stride-2 convolutions (at a third and two thirds of the depth) halve the side
            strided = {self.depth // 3, 2 * self.depth // 3}
            for i in range(self.depth - 1):
                stride = 2 if i in strided else 1
                layers.append(nn.Conv2d(1 if i == 0 else w, w, 3, stride=stride, padding=1))
        layers.append(nn.Linear(w, 10))
        self.layers = nn.ModuleList(layers)
        self.act = act()

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        if self.arch == "cnn":
            x = x.mean(dim=(2, 3))
        return self.layers[-1](x)


def build(spec: dict) -> PlainNet:
    return PlainNet(spec)


def shapes(model) -> list:
    return [[k, list(v.shape)] for k, v in torchstate.state_tensors(model)]


def child_main(conn, spec: dict, seed: int):
    """In the child, after the privilege drop: build the network with torch seeded from the run's
    seed, let init.py initialize it, send its state's names and shapes (M) and values (S)."""
    torchstate.setup(seed)
    model = build(spec)
    import init  # the agent's module, imported after the drop

    with torch.no_grad():
        init.initialize(model)
    conn.send_bytes(b"M" + json.dumps(shapes(model)).encode())
    conn.send_bytes(b"S" + torchstate.state_bytes(model))
