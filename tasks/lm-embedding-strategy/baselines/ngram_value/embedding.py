import torch
import torch.nn as nn


class Embedding(nn.Module):
    """NOT a baseline (not in task.yaml): the headroom method of the README, the reference
    (ngram_hash) plus the value embeddings of value_embed (first and last layers sharing a byte
    table, N(0, 1) rows, a learned gain per layer), the n-gram tables sized to what is left.

    Byte embeddings plus hashed n-gram embeddings (Byte Latent Transformer, Pagnoni et al.
    2024): the features of byte t are e(x_t) + sum_n E_n[hash(x_{t-n+1..t}) mod K] for n = 2, 3, 4
    (the n-gram ENDING at t, so it is causal; bytes before the window start count as a pad value),
    with the tables sized to the parameter budget.  Positions: RoPE (Su et al. 2021).  Read-out
    tied to the byte table."""

    NS = (2, 3, 4)

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab_size, d)
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        n = cfg.n_layer
        self.which = [min(i, n - 1 - i) for i in range(n)]
        self.values = nn.ModuleList(nn.Embedding(cfg.vocab_size, d) for _ in range((n + 1) // 2))
        self.gain = nn.Parameter(torch.full((n,), 0.5))
        budget = cfg.embedding_budget - cfg.vocab_size * d * (1 + len(self.values)) - n
        self.buckets = max(1, budget // (d * len(self.NS)))
        self.tables = nn.ModuleList(nn.Embedding(self.buckets, d) for _ in self.NS)
        for t in self.tables:
            nn.init.normal_(t.weight, mean=0.0, std=0.02)
        half = cfg.head_dim // 2
        inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def ngram_ids(self, idx, n):
        B, T = idx.shape
        pad = torch.full((B, n - 1), 256, dtype=idx.dtype, device=idx.device)
        x = torch.cat([pad, idx], dim=1)
        h = torch.zeros(B, T, dtype=torch.int64, device=idx.device)
        for j in range(n):  # polynomial rolling hash of x_{t-n+1..t}
            h = (h * 1000003 + x[:, j : j + T] + 1) % 2147483647
        return (h * 2654435761 + n) % self.buckets

    def forward(self, idx):
        x = self.tok(idx)
        for n, table in zip(self.NS, self.tables, strict=True):
            x = x + table(self.ngram_ids(idx, n))
        return x, [self.gain[i] * self.values[k](idx) for i, k in enumerate(self.which)]

    def attention_positions(self, T):
        t = torch.arange(T, dtype=torch.float32)
        return torch.outer(t, self.inv_freq), None

    def output_weight(self):
        return self.tok.weight
