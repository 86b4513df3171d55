import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-AI, DeepSeek-V2, 2024): keys and values of all
    heads are up-projected from one low-rank latent c = RMSNorm(W_dkv x) of dimension
    kv_rank = d_model / 4, and only c is cached (kv_rank floats per token and layer, 1/8 of the
    multi-head cache). Queries are not compressed and there is no decoupled rotary key: the
    GPT uses absolute position embeddings, so the up-projections could be absorbed into the
    query and output projections at inference; here they are applied explicitly."""

    def __init__(self, d_model, n_head, block_size):
        super().__init__()
        assert d_model % n_head == 0
        self.n_head = n_head
        self.head_dim = d_model // n_head
        self.kv_rank = d_model // 4
        self.q = nn.Linear(d_model, d_model)
        self.kv_down = nn.Linear(d_model, self.kv_rank, bias=False)
        self.kv_norm = nn.RMSNorm(self.kv_rank)
        self.k_up = nn.Linear(self.kv_rank, d_model, bias=False)
        self.v_up = nn.Linear(self.kv_rank, d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model)

    def heads(self, z):
        b, t, _ = z.shape
        return z.view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, heads, T, head_dim)

    def forward(self, x, cache=None):
        b, t, d = x.shape
        c = self.kv_norm(self.kv_down(x))  # (B, T, kv_rank): the only thing cached
        if cache is not None:
            c = torch.cat([cache[0], c], dim=1)
        q, k, v = self.heads(self.q(x)), self.heads(self.k_up(c)), self.heads(self.v_up(c))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = k.shape[2]
            mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y), (c,)
