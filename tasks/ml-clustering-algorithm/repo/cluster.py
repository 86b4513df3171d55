"""The clustering method (editable below the marked line).

`cluster(X, n_clusters, rng)` receives the points of one data set, X (float64, shape (n, dim),
read-only), the number of true classes, and a numpy Generator seeded from the run's seed; it
returns one integer label per point (shape (n,)). Labels are arbitrary integers in [0, n);
-1 marks a point as noise, and all noise points together count as one more cluster when the
labels are scored against the true classes (adjusted Rand index, normalized mutual information).
Allowed imports: numpy, scipy and math.
"""

import math

import numpy as np

# ---- editable region (lines 16 to end): the clustering method ----


def pairwise_sq_dists(X):
    """Squared Euclidean distances between all rows of X, (n, n), clipped at 0."""
    sq = (X * X).sum(axis=1)
    D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.maximum(D, 0.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


def minimum_spanning_tree(D):
    """Prim's algorithm on a dense (n, n) distance matrix: the n - 1 edges (i, j, weight)."""
    n = len(D)
    in_tree = np.zeros(n, dtype=bool)
    best = np.full(n, np.inf)
    parent = np.zeros(n, dtype=np.int64)
    edges = []
    current = 0
    for _ in range(n - 1):
        in_tree[current] = True
        closer = D[current] < best
        best[closer] = D[current][closer]
        parent[closer] = current
        best[in_tree] = np.inf
        nxt = int(np.argmin(best))
        edges.append((int(parent[nxt]), nxt, float(best[nxt])))
        current = nxt
    return edges


def components(n, edges):
    """Connected components (labels 0, 1, ...) of the graph on n nodes with these edges."""
    root = np.arange(n)

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, j in edges:
        a, b = find(i), find(j)
        if a != b:
            root[a] = b
    roots = np.array([find(i) for i in range(n)])
    return np.unique(roots, return_inverse=True)[1]


def cluster(X, n_clusters, rng):
    """Single-linkage agglomerative clustering (Sibson 1973; Gower & Ross 1969): the minimum
    spanning tree of the points, cut at its n_clusters - 1 longest edges."""
    n = len(X)
    edges = minimum_spanning_tree(np.sqrt(pairwise_sq_dists(X)))
    order = np.argsort([w for _, _, w in edges], kind="stable")
    keep = [edges[e][:2] for e in order[: n - n_clusters]]
    return components(n, keep)
