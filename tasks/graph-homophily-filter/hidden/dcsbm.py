"""Degree-corrected, multi-class contextual SBM (hidden setting generator).

Generalises repo/csbm.py's cSBM (Deshpande et al. 2018; GPR-GNN's parameterisation) in two ways:
- C balanced classes: P(i~j) = theta_i theta_j (d + sqrt(d) lam (C-1)) / n within a class and
  theta_i theta_j (d - sqrt(d) lam) / n across classes, which keeps the average degree d and
  reduces to the two-class cSBM at C = 2 and theta = 1;
- degree correction (Karrer & Newman, Phys. Rev. E 83, 2011): power-law propensities theta
  (normalised to mean 1 within each class); edges drawn as a Poisson multigraph with
  theta-proportional endpoints, collapsed to a simple graph without self-loops.
Features: x_i = sqrt(mu / n) v_{y_i} + z_i / sqrt(p), v_c = sqrt(2) (u_c - mean_c u_c),
u_c ~ N(0, I/p), so that E||v_c - v_c'||^2 = 4 as for the two-class cSBM's +-u.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from csbm import GraphData, csbm_lambda_mu, random_split


def dcsbm(rng: np.random.Generator, *, n: int, p: int, d: float, phi: float, eps: float,
          num_classes: int, degree_exponent: float, train_frac: float,
          val_frac: float) -> GraphData:
    C = num_classes
    lam, mu = csbm_lambda_mu(phi, eps, n, p)
    labels = np.arange(n) % C
    # power-law propensities: P(theta > t) ~ t^-(degree_exponent - 1)
    theta = (1.0 - rng.random(n)) ** (-1.0 / (degree_exponent - 1.0))
    for c in range(C):
        theta[labels == c] /= theta[labels == c].mean()
    p_in = max(d + math.sqrt(d) * lam * (C - 1), 0.0) / n
    p_out = max(d - math.sqrt(d) * lam, 0.0) / n
    rows, cols = [], []
    for a in range(C):
        idx_a = np.flatnonzero(labels == a)
        w_a = theta[idx_a] / theta[idx_a].sum()
        for b in range(a, C):
            idx_b = np.flatnonzero(labels == b)
            w_b = theta[idx_b] / theta[idx_b].sum()
            s_a, s_b = theta[idx_a].sum(), theta[idx_b].sum()
            mean_edges = (p_in * s_a * s_a / 2.0) if a == b else (p_out * s_a * s_b)
            m = int(rng.poisson(mean_edges))
            rows.append(idx_a[rng.choice(idx_a.size, size=m, p=w_a)])
            cols.append(idx_b[rng.choice(idx_b.size, size=m, p=w_b)])
    r, c_ = np.concatenate(rows), np.concatenate(cols)
    keep = r != c_
    r, c_ = r[keep], c_[keep]
    adj = sp.coo_matrix((np.ones(2 * r.size), (np.r_[r, c_], np.r_[c_, r])), shape=(n, n)).tocsr()
    adj.sum_duplicates()
    adj.data[:] = 1.0
    u = rng.normal(0.0, 1.0 / math.sqrt(p), size=(C, p))
    v = math.sqrt(2.0) * (u - u.mean(axis=0, keepdims=True))
    z = rng.normal(0.0, 1.0, size=(n, p))
    x = math.sqrt(mu / n) * v[labels] + z / math.sqrt(p)
    perm = rng.permutation(n)
    adj = adj[perm][:, perm].tocsr()
    adj.sort_indices()
    x, labels = np.ascontiguousarray(x[perm]), labels[perm].astype(np.int64)
    train, val, test = random_split(rng, labels, C, train_frac, val_frac)
    return GraphData(adj, x, labels, C, train, val, test)
