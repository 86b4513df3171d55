import numpy as np
import scipy.sparse as sp

K_HOPS = 10  # APPNP's power-iteration steps
ALPHA = 0.1  # teleport (restart) probability


def normalized_adjacency(adj):
    """GCN's renormalised adjacency D~^-1/2 (A + I) D~^-1/2 (Kipf & Welling, ICLR 2017)."""
    a_tilde = adj + sp.eye(adj.shape[0], format="csr")
    deg = np.asarray(a_tilde.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(1.0 / np.sqrt(deg))
    return (d_inv_sqrt @ a_tilde @ d_inv_sqrt).tocsr()


def build_filter(adj, features, train_idx, train_labels, num_classes):
    """APPNP (Klicpera et al., ICLR 2019): personalised-PageRank propagation,
    Z <- (1 - alpha) S Z + alpha X for K steps, a fixed low-pass filter."""
    s = normalized_adjacency(adj)
    z = features
    for _ in range(K_HOPS):
        z = (1.0 - ALPHA) * (s @ z) + ALPHA * features
    return {"bases": [z], "coef_init": [1.0], "learn_coef": False}
