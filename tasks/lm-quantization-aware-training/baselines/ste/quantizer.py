import math

import torch
import torch.nn as nn


def _range(w, bits):
    """Per-group asymmetric min/max range (containing 0), as in Jacob et al. 2018."""
    qmax = 2 ** bits - 1
    lo = w.amin(dim=-1).clamp(max=0.0)
    hi = w.amax(dim=-1).clamp(min=0.0)
    scale = ((hi - lo) / qmax).clamp(min=1e-8)
    zero = torch.round(-lo / scale)
    return scale, zero


class Quantizer(nn.Module):
    """Quantization-aware training with the straight-through estimator (Bengio et al. 2013;
    Jacob et al. 2018): the forward uses the weights fake-quantized to the same per-group
    min/max grid the export uses; round() passes the gradient unchanged to the master weight."""

    def __init__(self, weight, bits, group_size):
        super().__init__()
        self.bits = bits
        self.group_size = group_size

    def _grouped(self, weight):
        o, i = weight.shape
        return weight.reshape(o, i // self.group_size, self.group_size)

    def forward(self, weight, progress):
        w = self._grouped(weight)
        scale, zero = _range(w.detach(), self.bits)
        s, z = scale[..., None], zero[..., None]
        x = w / s + z
        x_q = torch.clamp(torch.round(x), 0, 2 ** self.bits - 1)
        x = x + (x_q - x).detach()                      # straight-through estimator
        return (s * (x - z)).reshape(weight.shape)

    def penalty(self, weight, progress):
        return None

    def export(self, weight):
        o, i = weight.shape
        w = self._grouped(weight)
        scale, zero = _range(w, self.bits)
        codes = torch.clamp(torch.round(w / scale[..., None]) + zero[..., None], 0, 2 ** self.bits - 1)
        return codes.reshape(o, i), scale, zero
