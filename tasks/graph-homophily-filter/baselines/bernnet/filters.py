import math

import numpy as np
import scipy.sparse as sp

K_ORDER = 10  # order of the Bernstein polynomial


def normalized_adjacency(adj):
    """D^-1/2 A D^-1/2 without self-loops (isolated nodes get a zero row)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1.0)), 0.0))
    return (d_inv_sqrt @ adj @ d_inv_sqrt).tocsr()


def build_filter(adj, features, train_idx, train_labels, num_classes):
    """BernNet (He et al., NeurIPS 2021): h(L) = sum_k theta_k C(K,k)/2^K (2I - L)^(K-k) L^k
    on the normalised Laplacian L = I - D^-1/2 A D^-1/2 (spectrum in [0, 2]); theta learned,
    initialised to 1 (an all-pass filter)."""
    a_norm = normalized_adjacency(adj)
    lap_x = [features]  # L^k X
    for _ in range(K_ORDER):
        lap_x.append(lap_x[-1] - a_norm @ lap_x[-1])
    bases = []
    for k in range(K_ORDER + 1):
        h = lap_x[k]
        for _ in range(K_ORDER - k):  # (2I - L) = I + A_norm
            h = h + a_norm @ h
        bases.append(math.comb(K_ORDER, k) / 2.0**K_ORDER * h)
    return {"bases": bases, "coef_init": [1.0] * (K_ORDER + 1), "learn_coef": True}
