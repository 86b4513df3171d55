"""The fixed GPT body (trusted, not editable): pre-LN transformer blocks with causal self-attention
and a GELU MLP, a final LayerNorm and a linear read-out through the weight matrix the embedding
module provides.  Everything about how tokens and positions enter the model lives in
embedding.py (the editable file); this file only consumes what it returns:

  x0, value_embeds = embedding(idx)          token/position features (B, T, d) and optional
                                             per-layer value embeddings (each (B, T, d) or None)
  angles, bias = embedding.attention_positions(T)
                                             optional rotary angles (T, head_dim // 2) applied to
                                             queries and keys, optional additive attention bias
                                             (n_head, T, T); both are computed from T alone
  W = embedding.output_weight()              (vocab_size, d_model) read-out matrix

The causal mask is applied here, after the bias, so nothing above the diagonal is ever attended.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class Config:
    vocab_size: int = 256
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    block_size: int = 64       # training context length
    max_params: int = 0        # cap on the total number of trainable parameters (body + embedding)
    body_params: int = 0       # parameters of the fixed body (blocks + final LayerNorm)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def embedding_budget(self) -> int:
        """How many trainable parameters the embedding module may have."""
        return self.max_params - self.body_params


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :h/2], x[..., h/2:]) of (B, H, T, h) by angles (T, h/2)."""
    half = x.shape[-1] // 2
    cos, sin = torch.cos(angles), torch.sin(angles)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.n_head, self.d = cfg.n_head, cfg.d_model
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, angles, bias, ve):
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        if ve is not None:
            v = v + ve
        q, k, v = (t.view(B, T, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        if angles is not None:
            q, k = apply_rotary(q, angles), apply_rotary(k, angles)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        mask = torch.zeros(T, T, dtype=x.dtype, device=x.device).masked_fill(~causal, float("-inf"))
        if bias is not None:
            mask = bias.to(x.dtype).unsqueeze(0) + mask            # (1, H, T, T); -inf stays -inf
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=False)
        self.out = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, angles, bias, ve):
        x = x + self.attn(self.ln1(x), angles, bias, ve)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class Body(nn.Module):
    """Blocks + final LayerNorm. Initialised GPT-2 style (std 0.02, residual projections scaled)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, x0, value_embeds, angles, bias, out_weight):
        x = x0
        for i, block in enumerate(self.blocks):
            ve = value_embeds[i] if value_embeds is not None else None
            x = block(x, angles, bias, ve)
        return self.ln_f(x) @ out_weight.t()


def body_param_count(cfg: Config) -> int:
    return sum(p.numel() for p in Body(cfg).parameters())


class GPT(nn.Module):
    """Embedding module (agent's) + fixed body; the harness calls the pieces separately."""

    def __init__(self, cfg: Config, embedding: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.embedding = embedding
        self.body = Body(cfg)
