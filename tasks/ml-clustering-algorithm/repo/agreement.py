"""The metrics (fixed): adjusted Rand index and normalized mutual information between a
clustering and the true classes, from the contingency table. Used by the harness parent (its log)
and by the grader (the score). A label -1 (noise) counts as one more cluster, as scikit-learn's
metrics count it."""

from __future__ import annotations

import numpy as np


def contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table


def ari(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985): 1 for identical partitions, 0 in expectation
    for a random one."""
    c = contingency(y_true, y_pred).astype(np.float64)
    n = c.sum()

    def pairs(v):
        return float((v * (v - 1) / 2).sum())

    index, a, b = pairs(c), pairs(c.sum(axis=1)), pairs(c.sum(axis=0))
    expected = a * b / (n * (n - 1) / 2)
    top = (a + b) / 2
    if top == expected:  # both partitions trivial (one cluster, or all singletons)
        return 1.0
    return (index - expected) / (top - expected)


def nmi(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Normalized mutual information, I(T; P) / ((H(T) + H(P)) / 2) (Strehl & Ghosh 2002 with
    the arithmetic mean, scikit-learn's default)."""
    c = contingency(y_true, y_pred).astype(np.float64)
    pij = c / c.sum()
    pi, pj = pij.sum(axis=1), pij.sum(axis=0)
    nz = pij > 0
    mi = float((pij[nz] * np.log(pij[nz] / np.outer(pi, pj)[nz])).sum())
    h = -float((pi * np.log(pi)).sum()) - float((pj * np.log(pj)).sum())
    if h <= 0:  # both partitions are a single cluster
        return 1.0
    return max(0.0, 2 * mi / h)
