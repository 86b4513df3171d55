import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    """Multi-query attention (Shazeer 2019): all n_head query heads share one key/value head,
    so the cache is 1/n_head of the multi-head cache."""

    def __init__(self, d_model, n_head, block_size):
        super().__init__()
        assert d_model % n_head == 0
        self.n_head = n_head
        self.n_kv = 1
        self.head_dim = d_model // n_head
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, self.n_kv * self.head_dim)
        self.v = nn.Linear(d_model, self.n_kv * self.head_dim)
        self.proj = nn.Linear(d_model, d_model)

    def heads(self, z):
        b, t, _ = z.shape
        return z.view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, heads, T, head_dim)

    def forward(self, x, cache=None):
        b, t, d = x.shape
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        new_cache = (k, v)  # (B, n_kv, T, head_dim) each
        rep = self.n_head // self.n_kv
        kk, vv = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if cache is None:
            y = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
        else:
            s = kk.shape[2]
            mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
            y = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y), new_cache
