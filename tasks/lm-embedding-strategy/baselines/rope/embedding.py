import math

import torch
import torch.nn as nn


class Embedding(nn.Module):
    """Tied token table, no absolute positions; rotary position embedding (RoPE, base 10000)
    on queries and keys of every layer (Su et al. 2021)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        half = cfg.head_dim // 2
        inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, idx):
        return self.tok(idx), None

    def attention_positions(self, T):
        t = torch.arange(T, dtype=torch.float32)
        return torch.outer(t, self.inv_freq), None

    def output_weight(self):
        return self.tok.weight
