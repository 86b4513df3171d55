import numpy as np
import scipy.sparse as sp

K_HOPS = 10  # polynomial degree
ALPHA = 0.1  # PPR initialisation of the coefficients


def normalized_adjacency(adj):
    """GCN's renormalised adjacency D~^-1/2 (A + I) D~^-1/2 (Kipf & Welling, ICLR 2017)."""
    a_tilde = adj + sp.eye(adj.shape[0], format="csr")
    deg = np.asarray(a_tilde.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(1.0 / np.sqrt(deg))
    return (d_inv_sqrt @ a_tilde @ d_inv_sqrt).tocsr()


def build_filter(adj, features, train_idx, train_labels, num_classes):
    """GPR-GNN (Chien et al., ICLR 2021): sum_k gamma_k S^k X with the generalized PageRank
    weights gamma learned jointly with the classifier, initialised to PPR,
    gamma_k = alpha (1 - alpha)^k, gamma_K = (1 - alpha)^K."""
    s = normalized_adjacency(adj)
    bases = [features]
    for _ in range(K_HOPS):
        bases.append(s @ bases[-1])
    gamma = ALPHA * (1.0 - ALPHA) ** np.arange(K_HOPS + 1)
    gamma[-1] = (1.0 - ALPHA) ** K_HOPS
    return {"bases": bases, "coef_init": gamma.tolist(), "learn_coef": True}
