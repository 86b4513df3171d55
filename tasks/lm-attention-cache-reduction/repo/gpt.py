"""The fixed GPT body (pre-LayerNorm decoder, nanoGPT-style) around the editable attention module.

    x = tok_emb(idx) + pos_emb(positions)
    for each layer:  a, cache = attn(ln_1(x), cache);  x = x + a;  x = x + mlp(ln_2(x))
    logits = head(ln_f(x))

Byte-level vocabulary (128: the Shakespeare texts are ASCII). Absolute learned position
embeddings are added once at the input, so the attention module needs no position information:
it sees the hidden states of the newest positions and whatever it cached for the earlier ones.
"""
from __future__ import annotations

import torch
import torch.nn as nn

VOCAB = 128


class MLP(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.act = nn.GELU()
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    def __init__(self, attention_cls, d_model: int, n_head: int, block_size: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = attention_cls(d_model, n_head, block_size)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)

    def forward(self, x, cache):
        a, new_cache = self.attn(self.ln_1(x), cache)
        if not isinstance(a, torch.Tensor) or a.shape != x.shape:
            raise ValueError(
                f"attention forward must return (y, cache) with y of shape {tuple(x.shape)}, "
                f"got {type(a).__name__} {tuple(getattr(a, 'shape', ()))}")
        x = x + a
        return x + self.mlp(self.ln_2(x)), new_cache


class GPT(nn.Module):
    def __init__(self, attention_cls, d_model: int, n_head: int, n_layer: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.tok_emb = nn.Embedding(VOCAB, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(
            [Block(attention_cls, d_model, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, caches=None, pos0: int = 0):
        """idx (B, T) int64 tokens at positions pos0 .. pos0+T-1; caches: None (a fresh
        sequence) or the list returned by the previous call. Returns (logits (B, T, VOCAB),
        new caches: one entry per layer, whatever that layer's attention returned)."""
        b, t = idx.shape
        if pos0 + t > self.block_size:
            raise ValueError(f"positions up to {pos0 + t} exceed block_size {self.block_size}")
        pos = torch.arange(pos0, pos0 + t, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        if caches is None:
            caches = [None] * len(self.blocks)
        new = []
        for block, cache in zip(self.blocks, caches):
            x, c = block(x, cache)
            new.append(c)
        return self.head(self.ln_f(x)), new

