import math

import torch
import torch.nn as nn


class Embedding(nn.Module):
    """Learned token + learned absolute position tables, separate (untied) read-out matrix."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)
        self.out = nn.Parameter(torch.zeros(cfg.vocab_size, cfg.d_model))
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.pos.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.out, mean=0.0, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        return self.tok(idx) + self.pos(pos), None

    def attention_positions(self, T):
        return None, None

    def output_weight(self):
        return self.out
