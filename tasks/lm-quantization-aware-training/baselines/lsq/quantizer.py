import math

import torch
import torch.nn as nn


def _ste_round(x):
    return x + (torch.round(x) - x).detach()


def _grad_scale(x, g):
    return x * g + (x - x * g).detach()


class Quantizer(nn.Module):
    """Learned step size quantization (LSQ, Esser et al. 2020): symmetric signed grid
    {-2^(b-1), ..., 2^(b-1) - 1} * s with one learned step size s per group, initialised to
    2 mean|w| / sqrt(Q_P), its gradient scaled by 1 / sqrt(g Q_P); straight-through round."""

    def __init__(self, weight, bits, group_size):
        super().__init__()
        self.bits = bits
        self.group_size = group_size
        self.qn = 2 ** (bits - 1)
        self.qp = 2 ** (bits - 1) - 1 if bits > 1 else 1
        w = self._grouped(weight)
        self.step = nn.Parameter(2 * w.abs().mean(dim=-1) / math.sqrt(self.qp))

    def _grouped(self, weight):
        o, i = weight.shape
        return weight.reshape(o, i // self.group_size, self.group_size)

    def forward(self, weight, progress):
        w = self._grouped(weight)
        g = 1.0 / math.sqrt(self.group_size * self.qp)
        s = _grad_scale(self.step, g).abs().clamp(min=1e-6)[..., None]
        x = torch.clamp(w / s, -self.qn, self.qp)
        return (_ste_round(x) * s).reshape(weight.shape)

    def penalty(self, weight, progress):
        return None

    def export(self, weight):
        o, i = weight.shape
        w = self._grouped(weight)
        s = self.step.abs().clamp(min=1e-6)
        codes = torch.clamp(torch.round(w / s[..., None]), -self.qn, self.qp) + self.qn
        return codes.reshape(o, i), s, torch.full_like(s, float(self.qn))
