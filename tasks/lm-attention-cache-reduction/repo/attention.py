"""The causal self-attention module of the GPT: the EDITABLE file of this task (every line below
the marker).

Contract (kept by every submission):

    class CausalSelfAttention(torch.nn.Module):
        def __init__(self, d_model, n_head, block_size): ...
        def forward(self, x, cache=None) -> (y, new_cache)

    x: (B, T, d_model) float32, the (LayerNorm-ed) hidden states of the T newest positions of B
       sequences. The harness calls forward in two ways only:
         - cache=None, T = the whole sequence (training, and the full-sequence forward);
         - T = 1 with the cache this module returned for the previous positions (decoding).
    y: (B, T, d_model), the attention output for those positions; position i may depend only on
       positions <= i (causal).
    new_cache: everything the module keeps about the positions seen so far, for the next call:
       None, or a tuple/list of at most 16 plain torch tensors (each with at least one element).
       Its size, numel x element_size summed over the tensors and divided by the number of
       cached positions, is the KV bytes per token being measured. Any dtype is allowed and
       counted at its real size.
    The module must keep no other state: nothing stored on self, in globals, or anywhere else
    during forward. Decoding token by token through the returned cache must reproduce the
    full-sequence forward (the harness checks both, in separate processes).

Absolute position embeddings are added to the residual stream by the fixed GPT (gpt.py), so no
rotary or other position code is needed here. The parameter count of the whole model may not
exceed 1.1x that of the default (multi-head) model. Allowed imports: torch, math.
"""
# ---- editable region starts here ----------------------------------------------------------
import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    """Standard multi-head attention (Vaswani et al. 2017): every head caches its own key and
    value, 2 * d_model floats per token and layer."""

    def __init__(self, d_model, n_head, block_size):
        super().__init__()
        assert d_model % n_head == 0
        self.n_head = n_head
        self.head_dim = d_model // n_head
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
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
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # t new queries at the end of the sequence: query i sees keys <= its position
            s = k.shape[2]
            mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.proj(y), (k, v)
