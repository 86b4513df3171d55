import math

import torch
import torch.nn as nn

ZETA, GAMMA = 1.1, -0.1          # rectified sigmoid stretch (Nagel et al. 2020)
V_SCALE = 50.0                   # V = V_SCALE * parameter, so that Adam steps move V fast enough
LAMBDA = 0.01                    # weight of the rounding regulariser
WARM = 0.2                       # no regulariser for the first 20% of training
BETA_START, BETA_END = 20.0, 2.0  # annealing of the regulariser's exponent


class Quantizer(nn.Module):
    """Learned rounding (AdaRound, Nagel et al. 2020), trained end to end on the language-model
    loss: the pretrained weight and its per-group min/max grid are frozen; each weight learns
    whether it rounds up or down through a rectified-sigmoid variable h(V) in [0, 1], pushed to
    0 or 1 by the annealed regulariser 1 - |2h - 1|^beta. The byte table and LayerNorms keep
    training with the fixed optimizer."""

    def __init__(self, weight, bits, group_size):
        super().__init__()
        self.bits = bits
        self.group_size = group_size
        qmax = 2 ** bits - 1
        o, i = weight.shape
        w = weight.reshape(o, i // group_size, group_size)
        lo = w.amin(dim=-1).clamp(max=0.0)
        hi = w.amax(dim=-1).clamp(min=0.0)
        scale = ((hi - lo) / qmax).clamp(min=1e-8)
        zero = torch.round(-lo / scale)
        x = w / scale[..., None] + zero[..., None]
        base = torch.floor(x)
        rest = (x - base).clamp(0.0, 1.0)
        # h(V) = rest at the start: the soft weight equals the pretrained one
        p = ((rest - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)
        self.v = nn.Parameter((torch.log(p) - torch.log1p(-p)) / V_SCALE)
        self.register_buffer("scale", scale)
        self.register_buffer("zero", zero)
        self.register_buffer("base", base)

    def _h(self):
        return torch.clamp(torch.sigmoid(V_SCALE * self.v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)

    def forward(self, weight, progress):
        q = torch.clamp(self.base + self._h(), 0, 2 ** self.bits - 1)
        return (self.scale[..., None] * (q - self.zero[..., None])).reshape(weight.shape)

    def penalty(self, weight, progress):
        if progress < WARM:
            return None
        t = (progress - WARM) / (1.0 - WARM)
        beta = BETA_END + (BETA_START - BETA_END) * (1 - t)
        h = self._h()
        return LAMBDA * (1 - (2 * h - 1).abs().pow(beta)).sum() / math.sqrt(h.numel())

    def export(self, weight):
        o, i = weight.shape
        up = (self.v >= 0).float()
        codes = torch.clamp(self.base + up, 0, 2 ** self.bits - 1)
        return codes.reshape(o, i), self.scale, self.zero
