import math

import torch

BLOCK_Q = 256
BLOCK_K = 256


def attention(q, k, v):
    """Tiled online-softmax attention with causal block skipping (FlashAttention-2, Dao 2023,
    section 3.1.1 "causal masking"): for the query block [i0, i1) only key blocks that start
    before i1 are visited - tiles entirely in the future are skipped, which halves the work for
    long sequences - and the mask is built only for the tiles that cross the diagonal."""
    t, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    out = torch.empty_like(q)
    kt = k.transpose(-2, -1)
    for i0 in range(0, t, BLOCK_Q):
        i1 = min(i0 + BLOCK_Q, t)
        qi = q[..., i0:i1, :] * scale
        m = l = acc = None
        for j0 in range(0, i1, BLOCK_K):  # skip key blocks entirely above the diagonal
            j1 = min(j0 + BLOCK_K, t)
            s = torch.matmul(qi, kt[..., j0:j1])
            if j1 - 1 > i0:  # a diagonal tile: mask the future
                future = torch.ones(i1 - i0, j1 - j0, dtype=torch.bool).triu(i0 - j0 + 1)
                s.masked_fill_(future, float("-inf"))
            m_new = s.amax(-1, keepdim=True)
            if m is not None:
                m_new = torch.maximum(m, m_new)
            p = s.sub_(m_new).exp_()
            if m is None:
                l = p.sum(-1, keepdim=True)
                acc = torch.matmul(p, v[..., j0:j1, :])
            else:
                corr = (m - m_new).exp_()
                l = l.mul_(corr).add_(p.sum(-1, keepdim=True))
                acc = acc.mul_(corr).add_(torch.matmul(p, v[..., j0:j1, :]))
            m = m_new
        out[..., i0:i1, :] = acc.div_(l)
    return out
