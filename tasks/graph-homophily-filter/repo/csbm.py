"""Contextual stochastic block model (cSBM) graphs with controlled homophily.

The cSBM of Deshpande et al. (NeurIPS 2018), parameterised as in GPR-GNN (Chien et al.,
ICLR 2021, `cSBM_dataset.py`): two balanced classes y in {-1, +1}, n nodes, average degree d,
p-dimensional Gaussian features.

    graph:    P(i~j) = (d + sqrt(d) * lam) / n   if y_i == y_j
                       (d - sqrt(d) * lam) / n   otherwise
    features: x_i = sqrt(mu / n) * y_i * u + z_i / sqrt(p),  u ~ N(0, I/p), z_i ~ N(0, I)

With gamma = n / p, lam = sqrt(1 + eps) * sin(phi * pi / 2) and
mu = sqrt(gamma * (1 + eps)) * cos(phi * pi / 2), so that lam^2 + mu^2 / gamma = 1 + eps:
eps > 0 sets how far above the detectability threshold the problem is, phi in [-1, 1] how the
information is shared between graph and features: phi = -1 is a purely heterophilous graph with
uninformative features, phi = 0 uninformative graph, phi = +1 purely homophilous graph.

Edges are sampled exactly (a binomial edge count per block, then distinct uniform pairs), node
order is randomly permuted, and the train/val/test split is drawn from the same generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class GraphData:
    adj: sp.csr_matrix  # symmetric 0/1 adjacency, no self-loops, float64
    features: np.ndarray  # (n, p) float64
    labels: np.ndarray  # (n,) int64 in [0, num_classes)
    num_classes: int
    train_idx: np.ndarray  # sorted int64
    val_idx: np.ndarray
    test_idx: np.ndarray


def csbm_lambda_mu(phi: float, eps: float, n: int, p: int) -> tuple[float, float]:
    """GPR-GNN's `parameterized_Lambda_and_mu`."""
    gamma = n / p
    lam = math.sqrt(1.0 + eps) * math.sin(phi * math.pi / 2.0)
    mu = math.sqrt(gamma * (1.0 + eps)) * math.cos(phi * math.pi / 2.0)
    return lam, mu


def _distinct_pairs(rng: np.random.Generator, m: int, n_a: int, n_b: int, same: bool) -> np.ndarray:
    """m distinct uniform pairs (i, j): i < j in [0, n_a) if `same`, else i in [0, n_a), j in [0, n_b)."""
    total = n_a * (n_a - 1) // 2 if same else n_a * n_b
    if m > total:
        raise ValueError(f"block too dense: {m} edges requested out of {total} pairs")
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < m:
        need = m - chosen.size
        i = rng.integers(0, n_a, size=2 * need + 16)
        j = rng.integers(0, n_a if same else n_b, size=2 * need + 16)
        if same:
            keep = i != j
            i, j = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
        code = i.astype(np.int64) * max(n_a, n_b) + j
        merged = np.concatenate([chosen, code])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)][:m]  # keep draw order: deterministic, uniform
    width = max(n_a, n_b)
    return np.stack([chosen // width, chosen % width], axis=1)


def sample_block_graph(rng: np.random.Generator, blocks: list[np.ndarray], prob: np.ndarray,
                       n: int) -> sp.csr_matrix:
    """Bernoulli SBM: nodes in blocks[a] and blocks[b] are joined with probability prob[a, b]."""
    rows, cols = [], []
    for a in range(len(blocks)):
        for b in range(a, len(blocks)):
            na, nb = blocks[a].size, blocks[b].size
            pairs = na * (na - 1) // 2 if a == b else na * nb
            m = int(rng.binomial(pairs, min(max(prob[a, b], 0.0), 1.0)))
            ij = _distinct_pairs(rng, m, na, nb, same=(a == b))
            rows.append(blocks[a][ij[:, 0]])
            cols.append(blocks[b][ij[:, 1]])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    adj = sp.coo_matrix((np.ones(2 * r.size), (np.r_[r, c], np.r_[c, r])), shape=(n, n)).tocsr()
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj


def random_split(rng: np.random.Generator, labels: np.ndarray, num_classes: int,
                 train_frac: float, val_frac: float):
    """Class-balanced training set (as GPR-GNN's `random_planetoid_splits`), random val/test."""
    n = labels.size
    per_class = max(1, round(train_frac * n / num_classes))
    train = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class]
                            for c in range(num_classes)])
    rest = rng.permutation(np.setdiff1d(np.arange(n), train))
    n_val = round(val_frac * n)
    return np.sort(train), np.sort(rest[:n_val]), np.sort(rest[n_val:])


def csbm(rng: np.random.Generator, *, n: int, p: int, d: float, phi: float, eps: float,
         train_frac: float, val_frac: float) -> GraphData:
    lam, mu = csbm_lambda_mu(phi, eps, n, p)
    # canonical order: first half class +1, second half class -1; permuted below
    y_pm = np.where(np.arange(n) < n // 2, 1.0, -1.0)
    blocks = [np.arange(n // 2), np.arange(n // 2, n)]
    c_in, c_out = d + math.sqrt(d) * lam, d - math.sqrt(d) * lam
    prob = np.array([[c_in, c_out], [c_out, c_in]]) / n
    adj = sample_block_graph(rng, blocks, prob, n)
    u = rng.normal(0.0, 1.0 / math.sqrt(p), size=p)
    z = rng.normal(0.0, 1.0, size=(n, p))
    x = math.sqrt(mu / n) * y_pm[:, None] * u[None, :] + z / math.sqrt(p)
    labels = (y_pm < 0).astype(np.int64)
    perm = rng.permutation(n)
    adj = adj[perm][:, perm].tocsr()
    adj.sort_indices()
    x, labels = np.ascontiguousarray(x[perm]), labels[perm]
    train, val, test = random_split(rng, labels, 2, train_frac, val_frac)
    return GraphData(adj, x, labels, 2, train, val, test)
