"""The weight initialization of deep plain networks (editable below the marked line).

`initialize(model)` is called once, under torch.no_grad(), on a freshly built network whose
parameters hold PyTorch's default initialization; it must set every parameter's initial value in
place (shapes and parameter set unchanged). Draw randomness from torch's global generator (seeded
by the harness). `model.layers` lists the weight layers from the input to the classifier (the
last, an nn.Linear); the rest are nn.Linear (MLP) or 3x3 nn.Conv2d (CNN); `model.activation` is
'relu' or 'tanh'; `model.arch` is 'mlp' or 'cnn'; `model.depth` and `model.width` give the size.
"""

import math

import torch

# ---- editable region (lines 16 to end): the initializer ----


def initialize(model):
    """PyTorch's default initialization, unchanged: every Linear and Conv2d weight uniform in
    +-1/sqrt(fan_in) (kaiming_uniform_ with a = sqrt(5)), biases uniform in +-1/sqrt(fan_in)."""
    for layer in model.layers:
        layer.reset_parameters()
