"""The fixed Q-network (fixed file; the harness's parent uses it, the head never does).

conv 16 3x3 (stride 1) -> ReLU -> fc 64 -> ReLU -> linear to num_actions * atoms: the layers of
`nn.Sequential(Conv2d, ReLU, Flatten, Linear, ReLU, Linear)`, initialised by that module (torch's
default initialisation), computed as matrix products with a hand-written backward pass. At this
size a step is mostly per-operation overhead; the convolution as a product with the 3x3 patches
(im2col) and all parameters in one flat tensor (one Adam update) make a gradient step about three
times cheaper than autograd through nn.Conv2d. The same function and gradient up to float32
rounding (`tests/test_task_rl_value_visual.py::test_flat_network_matches_torch`).

Layout: fc1's inputs are ordered (position, channel) instead of Flatten's (channel, position);
the weights are permuted accordingly, so the function is the same.
"""
from __future__ import annotations

import math

import numpy as np
import torch

CONV = 16     # 3x3 filters
HIDDEN = 64   # fc width (Young & Tian 2019 use 16 conv + 128 fc; halved for CPU)
SIDE = 10     # MinAtar frames are 10x10
OUT_SIDE = SIDE - 2
POS = OUT_SIDE * OUT_SIDE


def build_module(in_ch: int, outputs: int):
    """The reference torch module (and the source of the initial weights)."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(in_ch, CONV, 3, 1), nn.ReLU(), nn.Flatten(),
        nn.Linear(CONV * POS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, outputs))


def patch_index(in_ch: int) -> torch.Tensor:
    """Column indices into a flattened (C, 10, 10) frame: row p*C*9 + (c, dy, dx) of the patches
    of output position p, in the order of a Conv2d weight's (c, dy, dx)."""
    c, dy, dx = np.meshgrid(np.arange(in_ch), np.arange(3), np.arange(3), indexing="ij")
    offsets = (c * SIDE * SIDE + dy * SIDE + dx).reshape(-1)
    pos = (np.arange(OUT_SIDE)[:, None] * SIDE + np.arange(OUT_SIDE)[None, :]).reshape(-1)
    return torch.from_numpy((pos[:, None] + offsets[None, :]).reshape(-1))


class QNet:
    """Parameters in one flat tensor `theta` (views per layer); `patches(x)` once per batch of
    uint8 frames, `forward(P)` on them, `backward(g)` after `forward(P, keep=True)`."""

    def __init__(self, in_ch: int, outputs: int, module=None):
        m = build_module(in_ch, outputs) if module is None else module
        conv, fc1, fc2 = m[0], m[3], m[5]
        w1 = fc1.weight.detach().reshape(HIDDEN, CONV, POS).transpose(1, 2)
        parts = [conv.weight.detach().reshape(CONV, in_ch * 9), conv.bias.detach(),
                 w1.reshape(HIDDEN, POS * CONV), fc1.bias.detach(), fc2.weight.detach(),
                 fc2.bias.detach()]
        self.shapes = [tuple(p.shape) for p in parts]
        self.theta = torch.cat([p.reshape(-1) for p in parts]).contiguous()
        self.in_ch, self.outputs = in_ch, outputs
        self.index = patch_index(in_ch)
        self._views()

    def _views(self):
        off, self.w = 0, []
        for s in self.shapes:
            n = int(np.prod(s))
            self.w.append(self.theta[off:off + n].view(s))
            off += n

    def load(self, other: QNet) -> None:
        self.theta.copy_(other.theta)

    def patches(self, x: np.ndarray) -> torch.Tensor:
        """(n, C, 10, 10) uint8 -> (n * 64, C * 9) float32 patches, n blocks of 64 rows."""
        flat = torch.from_numpy(np.ascontiguousarray(x).reshape(len(x), -1)).float()
        return torch.index_select(flat, 1, self.index).view(len(x) * POS, self.in_ch * 9)

    def forward(self, P: torch.Tensor, keep: int = 0) -> torch.Tensor:
        """The outputs (n, outputs); the first ``keep`` rows' activations are kept for
        backward."""
        wc, bc, w1, b1, w2, b2 = self.w
        h1 = torch.addmm(bc, P, wc.t()).clamp_min_(0).view(-1, POS * CONV)
        h2 = torch.addmm(b1, h1, w1.t()).clamp_min_(0)
        out = torch.addmm(b2, h2, w2.t())
        if keep:
            self.saved = (P[:keep * POS], h1[:keep], h2[:keep])
        return out

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        """The gradient of sum(g * out) w.r.t. theta, for the kept rows of the last forward."""
        wc, bc, w1, b1, w2, b2 = self.w
        P, h1, h2 = self.saved
        relu_grad = torch.ops.aten.threshold_backward  # zero where the ReLU's output is 0
        dh2 = relu_grad(g @ w2, h2, 0)
        dh1 = relu_grad(dh2 @ w1, h1, 0).view(-1, CONV)
        return torch.cat([(dh1.t() @ P).reshape(-1), dh1.sum(0), (dh2.t() @ h1).reshape(-1),
                          dh2.sum(0), (g.t() @ h2).reshape(-1), g.sum(0)])


class Adam:
    """torch.optim.Adam's update (Kingma & Ba 2015; no weight decay, no amsgrad) on one flat
    tensor, in place: the arithmetic of torch's single-tensor implementation without the
    optimizer's per-step bookkeeping."""

    def __init__(self, theta: torch.Tensor, lr: float, eps: float, betas=(0.9, 0.999)):
        self.theta, self.lr, self.eps, self.betas = theta, lr, eps, betas
        self.m = torch.zeros_like(theta)
        self.v = torch.zeros_like(theta)
        self.t = 0

    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        self.theta.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))
