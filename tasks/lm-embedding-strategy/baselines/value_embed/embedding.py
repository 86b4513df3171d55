import torch
import torch.nn as nn


class Embedding(nn.Module):
    """Value embeddings (modded-nanogpt speedrun, Jordan et al. 2024, train_gpt.py; cf. value
    residual learning, Zhou et al. 2024, arXiv:2410.17897): besides the byte table that feeds
    the first block, extra byte tables whose rows are added to the attention values of the
    layers, the first and the last layers sharing a table: the speedrun's U-net pattern, layer i
    and layer n-1-i use table i (at 2 and 3 layers its later 012...012 pattern differs only in
    the middle layer of 3, which gets a table of its own here; one table per layer measured no
    better: 3.214 against 3.175 bpc, d64-l2-ctx64 seed 0).  Each layer's value embedding is
    scaled by a learned gain, init 0.5 (the speedrun's v = l0 * v + l1 * ve with l = (0.5, 0.5);
    the fixed body adds v + ve, so the gain sits on ve).  Positions: RoPE (Su et al. 2021), as
    in the speedrun.  Read-out tied to the byte table."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, n = cfg.d_model, cfg.n_layer
        self.tok = nn.Embedding(cfg.vocab_size, d)
        nn.init.normal_(self.tok.weight, mean=0.0, std=0.02)
        self.which = [min(i, n - 1 - i) for i in range(n)]
        self.values = nn.ModuleList(nn.Embedding(cfg.vocab_size, d) for _ in range((n + 1) // 2))
        # the speedrun keeps nn.Embedding's N(0, 1) rows: at std 0.02 the tables are lost next
        # to v in 250 steps (pilot, d64-l2-ctx64 seed 0: 3.269 bpc against 3.175 at N(0, 1))
        self.gain = nn.Parameter(torch.full((n,), 0.5))
        half = cfg.head_dim // 2
        inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / half))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, idx):
        ves = [self.gain[i] * self.values[k](idx) for i, k in enumerate(self.which)]
        return self.tok(idx), ves

    def attention_positions(self, T):
        t = torch.arange(T, dtype=torch.float32)
        return torch.outer(t, self.inv_freq), None

    def output_weight(self):
        return self.tok.weight
