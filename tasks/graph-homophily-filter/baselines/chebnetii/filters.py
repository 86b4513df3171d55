import numpy as np
import scipy.sparse as sp

K_ORDER = 10  # order of the Chebyshev interpolation


def normalized_adjacency(adj):
    """D^-1/2 A D^-1/2 without self-loops (isolated nodes get a zero row)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1.0)), 0.0))
    return (d_inv_sqrt @ adj @ d_inv_sqrt).tocsr()


def build_filter(adj, features, train_idx, train_labels, num_classes):
    """ChebNetII (He, Wei & Wen, NeurIPS 2022): Chebyshev interpolation of the filter at the
    Chebyshev nodes x_j = cos((j + 1/2) pi / (K + 1)),
        h(L^) = 2/(K+1) sum_k sum_j gamma_j T_k(x_j) T_k(L^),  k = 0 term halved,
    on the rescaled Laplacian L^ = L - I = -D^-1/2 A D^-1/2; gamma_j (the filter's values at
    the nodes) learned, initialised to 1 (an all-pass filter)."""
    l_hat = -normalized_adjacency(adj)
    cheb_x = [features, l_hat @ features]  # T_k(L^) X by the three-term recurrence
    for _ in range(2, K_ORDER + 1):
        cheb_x.append(2.0 * (l_hat @ cheb_x[-1]) - cheb_x[-2])
    nodes = np.cos((np.arange(K_ORDER + 1) + 0.5) * np.pi / (K_ORDER + 1))
    t_at_nodes = np.cos(np.outer(np.arange(K_ORDER + 1), np.arccos(nodes)))  # T_k(x_j)
    t_at_nodes[0] *= 0.5
    bases = []
    for j in range(K_ORDER + 1):
        h = np.zeros_like(features)
        for k in range(K_ORDER + 1):
            h += t_at_nodes[k, j] * cheb_x[k]
        bases.append(2.0 / (K_ORDER + 1) * h)
    return {"bases": bases, "coef_init": [1.0] * (K_ORDER + 1), "learn_coef": True}
