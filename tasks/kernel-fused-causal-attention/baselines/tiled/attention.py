import math

import torch

BLOCK_Q = 256
BLOCK_K = 256


def attention(q, k, v):
    """FlashAttention-style tiled attention in torch ops (Dao et al. 2022, Algorithm 1): for each
    block of queries, stream over *all* key/value blocks with an online softmax (running row max
    m, running normaliser l, rescaled accumulator), so that only a (BLOCK_Q, BLOCK_K) tile of
    scores exists at a time. The causal mask is applied tile by tile; tiles entirely in the
    future are still computed and masked (no block skipping)."""
    t, d = q.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    out = torch.empty_like(q)
    kt = k.transpose(-2, -1)
    for i0 in range(0, t, BLOCK_Q):
        i1 = min(i0 + BLOCK_Q, t)
        qi = q[..., i0:i1, :] * scale
        m = l = acc = None
        for j0 in range(0, t, BLOCK_K):
            j1 = min(j0 + BLOCK_K, t)
            s = torch.matmul(qi, kt[..., j0:j1])
            if j1 - 1 > i0:  # the tile reaches above the diagonal: mask the future
                future = torch.ones(i1 - i0, j1 - j0, dtype=torch.bool).triu(i0 - j0 + 1)
                s.masked_fill_(future, float("-inf"))
            m_new = s.amax(-1, keepdim=True)
            if m is not None:
                m_new = torch.maximum(m, m_new)
            # a row whose tile is entirely masked has m_new = -inf only if every earlier tile
            # was masked too, which cannot happen: key 0 is visible to every query
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
