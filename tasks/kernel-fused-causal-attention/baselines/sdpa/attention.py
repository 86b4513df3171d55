import torch
import torch.nn.functional as F


def attention(q, k, v):
    """PyTorch's fused scaled_dot_product_attention with is_causal=True. On CPU it dispatches to
    ATen's flash-attention kernel (tiled, online softmax, causal block skipping, blocked for the
    cache, vectorised exp; no (T, T) matrix), the fused kernel production code calls."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
