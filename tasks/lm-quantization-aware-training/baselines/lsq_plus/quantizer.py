import math

import torch
import torch.nn as nn


def _ste_round(x):
    return x + (torch.round(x) - x).detach()


def _grad_scale(x, g):
    return x * g + (x - x * g).detach()


class Quantizer(nn.Module):
    """LSQ+ (Bhalgat et al. 2020): asymmetric grid beta + s * {0, ..., 2^b - 1} with a learned
    step size s AND a learned offset beta per group, both initialised from the group's min/max
    range, gradients scaled by 1 / sqrt(g Q_P) as in LSQ; straight-through round."""

    def __init__(self, weight, bits, group_size):
        super().__init__()
        self.bits = bits
        self.group_size = group_size
        self.qmax = 2 ** bits - 1
        w = self._grouped(weight)
        lo, hi = w.amin(dim=-1), w.amax(dim=-1)
        self.step = nn.Parameter(((hi - lo) / self.qmax).clamp(min=1e-6))
        self.offset = nn.Parameter(lo.clone())

    def _grouped(self, weight):
        o, i = weight.shape
        return weight.reshape(o, i // self.group_size, self.group_size)

    def forward(self, weight, progress):
        w = self._grouped(weight)
        g = 1.0 / math.sqrt(self.group_size * self.qmax)
        s = _grad_scale(self.step, g).abs().clamp(min=1e-6)[..., None]
        b = _grad_scale(self.offset, g)[..., None]
        x = torch.clamp((w - b) / s, 0, self.qmax)
        return (_ste_round(x) * s + b).reshape(weight.shape)

    def penalty(self, weight, progress):
        return None

    def export(self, weight):
        o, i = weight.shape
        w = self._grouped(weight)
        s = self.step.abs().clamp(min=1e-6)
        b = self.offset
        codes = torch.clamp(torch.round((w - b[..., None]) / s[..., None]), 0, self.qmax)
        return codes.reshape(o, i), s, -b / s
