import math

import torch
import torch.nn as nn


class Embedding(nn.Module):
    """Tied token table, no position embeddings; ALiBi: a linear penalty -m_h * (t - s) on the
    attention logits, head slopes m_h = 2^(-8h/H) (Press, Smith & Lewis 2022)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        H = cfg.n_head
        slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)])
        self.register_buffer("slopes", slopes, persistent=False)

    def forward(self, idx):
        return self.tok(idx), None

    def attention_positions(self, T):
        t = torch.arange(T, dtype=torch.float32)
        dist = (t[:, None] - t[None, :]).clamp(min=0.0)             # t - s for s <= t
        return None, -self.slopes[:, None, None] * dist[None]

    def output_weight(self):
        return self.tok.weight
