"""Exact causal self-attention, forward pass, on CPU. Lines above the marker are fixed.

attention(q, k, v) -> out
  q, k, v  float32 CPU tensors of shape (B, H, T, D) (batch, heads, sequence length, head dim),
           contiguous. B, H, T and D change between settings and between calls (T need not be
           a multiple of any block size).
  out      a new float32 tensor of shape (B, H, T, D) with
           out[b, h, i] = sum_{j <= i} softmax_j(q[b, h, i] . k[b, h, j] / sqrt(D)) v[b, h, j].
The harness runs this in one thread (torch.set_num_threads(1)); it times it in process CPU time
against a fixed naive implementation on the same inputs, measures its peak memory, and checks
its output against a float64 reference (max |out - ref| <= 1e-4 * max |v|). The output must not
share memory with q, k or v, and q, k, v must not be modified. Allowed imports: torch, math.
No file I/O.
"""
# ---- editable below this line ----
import math

import torch


def attention(q, k, v):
    """Naive causal attention: materialise the (T, T) scores and a boolean causal mask."""
    t = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    mask = torch.ones(t, t, dtype=torch.bool).triu(1)  # True above the diagonal: the future
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)
