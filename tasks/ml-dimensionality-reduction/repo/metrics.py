"""The metrics of an embedding (fixed; the harness parent and the grader use them, the embedding
code never does). All use k = 7 neighbours and Euclidean distances, with each point left out of
its own neighbourhood.

- knn_score: with class labels, the leave-one-out 7-NN classification accuracy in the embedding
  (majority vote, ties to the class of the nearer neighbours); on a manifold without classes
  (s-curve), the leave-one-out 7-NN regression R^2 of the manifold coordinates (each point
  predicted by the mean coordinates of its 7 embedding neighbours; R^2 per coordinate, averaged).
- trustworthiness (Venna & Kaski 2001): 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in N_k^Y(i)}
  max(0, r^X(i, j) - k), where r^X(i, j) is the rank of j among i's neighbours in the input
  space: penalizes embedding neighbours that are not input neighbours.
- continuity: the same with input and embedding swapped: input neighbours torn apart.
"""

from __future__ import annotations

import numpy as np


def sq_distances(A: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, the diagonal set to -1 (each point before all others)."""
    A = np.asarray(A, dtype=np.float64)
    sq = np.einsum("ij,ij->i", A, A)
    D = sq[:, None] + sq[None, :] - 2.0 * (A @ A.T)
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, -1.0)
    return D


def neighbours(D: np.ndarray, k: int) -> np.ndarray:
    """The k nearest of each row (self excluded), nearest first; ties in index order."""
    return np.argsort(D, axis=1, kind="stable")[:, 1 : k + 1]


def knn_accuracy(nn: np.ndarray, labels: np.ndarray) -> float:
    n, k = nn.shape
    classes, codes = np.unique(labels, return_inverse=True)
    votes = np.zeros((n, len(classes)))
    closeness = 1.0 + 1e-3 * (k - np.arange(k)) / k  # a tie goes to the nearer neighbours
    np.add.at(votes, (np.repeat(np.arange(n), k), codes[nn].ravel()), np.tile(closeness, n))
    return float(np.mean(votes.argmax(axis=1) == codes))


def knn_r2(nn: np.ndarray, targets: np.ndarray) -> float:
    pred = targets[nn].mean(axis=1)
    sse = ((targets - pred) ** 2).sum(axis=0)
    sst = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - sse / sst))


def _rank_penalty(D_from: np.ndarray, nn_other: np.ndarray, k: int) -> float:
    n = len(D_from)
    rows = np.arange(n)[:, None]
    penalty = 0.0
    for start in range(0, n, 256):  # rank of each selected pair: how many points are nearer
        sel = slice(start, start + 256)
        d = D_from[rows[sel], nn_other[sel]]
        ranks = (D_from[sel][:, None, :] < d[:, :, None]).sum(axis=2)
        penalty += float(np.maximum(ranks - k, 0).sum())
    return 1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty


def evaluate(X: np.ndarray, Y: np.ndarray, labels, targets, k: int = 7) -> dict:
    """Every metric of embedding Y of the points X."""
    DX, DY = sq_distances(X), sq_distances(Y)
    nn_x, nn_y = neighbours(DX, k), neighbours(DY, k)
    if labels is not None:
        score = knn_accuracy(nn_y, labels)
    else:
        score = knn_r2(nn_y, targets)
    return {
        "knn_score": score,
        "trustworthiness": _rank_penalty(DX, nn_y, k),
        "continuity": _rank_penalty(DY, nn_x, k),
    }


def check_embedding(Y, n: int, n_components: int) -> np.ndarray:
    """Y as float64 (n, n_components); ValueError saying what is wrong."""
    Y = np.asarray(Y)
    if Y.shape != (n, n_components):
        raise ValueError(f"the embedding must have shape ({n}, {n_components}), got {Y.shape}")
    if not np.issubdtype(Y.dtype, np.floating) and not np.issubdtype(Y.dtype, np.integer):
        raise ValueError(f"the embedding must be a numeric array, got dtype {Y.dtype}")
    Y = Y.astype(np.float64)
    if not np.isfinite(Y).all():
        raise ValueError("the embedding has non-finite values (nan or inf)")
    if np.abs(Y).max() > 1e12:
        raise ValueError("the embedding has values above 1e12 in magnitude")
    return Y
