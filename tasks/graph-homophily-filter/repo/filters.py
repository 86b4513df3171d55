"""The graph filter of the node classifier: the component under study.

build_filter(adj, features, train_idx, train_labels, num_classes) -> dict

Inputs (the only data this code ever sees; it runs in its own process):
  adj           scipy.sparse.csr_matrix (n, n), symmetric, 0/1 entries, no self-loops
  features      numpy float64 array (n, p), node features
  train_idx     numpy int64 array, indices of the training nodes
  train_labels  numpy int64 array, their classes in [0, num_classes)
  num_classes   int

Return a dict with exactly these keys:
  "bases"       list of K numpy arrays B_0 .. B_{K-1}, each (n, f), same f for all;
                1 <= K <= 32, 1 <= f <= 256, K * f <= 2048, all values finite
  "coef_init"   K floats gamma_0 .. gamma_{K-1}
  "learn_coef"  bool

The fixed readout (readout.py) classifies every node from

    logits = (sum_k gamma_k * B_k) @ W + b

training W, b (and gamma, when learn_coef is True, from coef_init, as GPR-GNN learns its
polynomial coefficients) with Adam on the training nodes' cross-entropy, early-stopped on the
validation nodes. The whole filter output is first multiplied by one scalar so that
sum_k coef_init_k * B_k has unit root-mean-square row norm. A fixed filter is a single basis
(K = 1); a learnable polynomial filter of degree K-1 is K basis matrices P_k(S) X.
Allowed imports: numpy, scipy, math. No file I/O. build_filter must return within 120 s.
"""

import numpy as np
import scipy.sparse as sp

K_HOPS = 2  # SGC's default number of propagation steps


def normalized_adjacency(adj):
    """GCN's renormalised adjacency D~^-1/2 (A + I) D~^-1/2 (Kipf & Welling, ICLR 2017)."""
    a_tilde = adj + sp.eye(adj.shape[0], format="csr")
    deg = np.asarray(a_tilde.sum(axis=1)).ravel()
    d_inv_sqrt = sp.diags(1.0 / np.sqrt(deg))
    return (d_inv_sqrt @ a_tilde @ d_inv_sqrt).tocsr()


def build_filter(adj, features, train_idx, train_labels, num_classes):
    """Default: SGC-style fixed low-pass filter S^K X (Wu et al., ICML 2019), K = 2."""
    s = normalized_adjacency(adj)
    h = features
    for _ in range(K_HOPS):
        h = s @ h
    return {"bases": [h], "coef_init": [1.0], "learn_coef": False}
