import math

import torch
import torch.nn as nn


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017) over the grid cells."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // self.heads), dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GridTransformer(nn.Module):
    """A small pre-norm transformer encoder with every grid cell a token: the token embeds the
    history of the cell and its two neighbours, plus sinusoidal position features of its coordinate; a linear head gives
    the change of the cell over one step."""

    def __init__(self, cfg, dim=32, heads=4, layers=2, n_freq=8):
        super().__init__()
        x = (torch.arange(cfg.n_x) + 0.5) / cfg.n_x
        f = torch.arange(1, n_freq + 1) * 2 * math.pi
        pos = torch.cat([torch.sin(x[:, None] * f), torch.cos(x[:, None] * f)], dim=1)
        self.register_buffer("pos", pos, persistent=False)
        # each token embeds its cell and its two neighbours (overlapping patches of 3 cells)
        self.embed = nn.Conv1d(cfg.t_in + 2 * n_freq, dim, 3, padding=1, padding_mode="circular")
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, u):
        h = torch.cat([u.transpose(1, 2), self.pos.expand(u.shape[0], -1, -1)], dim=-1)
        h = self.embed(h.transpose(1, 2)).transpose(1, 2)
        for blk in self.blocks:
            h = blk(h)
        return u[:, -1] + self.head(self.norm(h)).squeeze(-1)


def build_model(cfg):
    return GridTransformer(cfg)
