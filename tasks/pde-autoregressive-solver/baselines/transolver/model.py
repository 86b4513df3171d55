import math

import torch
import torch.nn as nn


class PhysicsAttention(nn.Module):
    """Physics-attention of Transolver (Wu et al., ICML 2024): each head assigns every grid
    point softly to M learned slices (softmax over slices, learned temperature), aggregates the
    points of a slice into one slice token (weighted mean), attends among the M slice tokens and
    scatters the result back to the points with the same weights."""

    def __init__(self, dim, heads, slices):
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.x_proj = nn.Linear(dim, dim)
        self.fx_proj = nn.Linear(dim, dim)
        self.slice = nn.Linear(self.dh, slices)
        self.temperature = nn.Parameter(torch.full((1, heads, 1, 1), 0.5))
        self.qkv = nn.Linear(self.dh, 3 * self.dh, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        H, dh = self.heads, self.dh
        xs = self.x_proj(x).view(B, N, H, dh).transpose(1, 2)  # (B, H, N, dh)
        fx = self.fx_proj(x).view(B, N, H, dh).transpose(1, 2)
        w = torch.softmax(self.slice(xs) / self.temperature.clamp(min=0.05), dim=-1)  # (B,H,N,M)
        norm = w.sum(2)[..., None] + 1e-5  # (B, H, M, 1)
        tokens = (w.transpose(2, 3) @ fx) / norm  # (B, H, M, dh)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
        out = w @ (att @ v)  # (B, H, N, dh)
        return self.out(out.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    def __init__(self, dim, heads, slices):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = PhysicsAttention(dim, heads, slices)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transolver(nn.Module):
    """Transolver: a pointwise preprocessing MLP of (history, coordinate features), pre-norm
    blocks of physics-attention and MLP, a linear head for the one-step change."""

    def __init__(self, cfg, dim=32, heads=4, slices=16, layers=2, n_freq=8):
        super().__init__()
        x = (torch.arange(cfg.n_x) + 0.5) / cfg.n_x
        f = torch.arange(1, n_freq + 1) * 2 * math.pi
        pos = torch.cat([torch.sin(x[:, None] * f), torch.cos(x[:, None] * f)], dim=1)
        self.register_buffer("pos", pos, persistent=False)
        self.pre = nn.Sequential(nn.Linear(cfg.t_in + 2 * n_freq, 2 * dim), nn.GELU(),
                                 nn.Linear(2 * dim, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, slices) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, u):
        h = torch.cat([u.transpose(1, 2), self.pos.expand(u.shape[0], -1, -1)], dim=-1)
        h = self.pre(h)
        for blk in self.blocks:
            h = blk(h)
        return u[:, -1] + self.head(self.norm(h)).squeeze(-1)


def build_model(cfg):
    return Transolver(cfg)
