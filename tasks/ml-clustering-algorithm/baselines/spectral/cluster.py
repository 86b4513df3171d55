
from scipy.sparse import csr_matrix, diags
from scipy.sparse.linalg import eigsh


def pairwise_sq_dists(X, C=None):
    """Squared Euclidean distances between the rows of X and of C (default X), clipped at 0."""
    C = X if C is None else C
    D = (X * X).sum(axis=1)[:, None] + (C * C).sum(axis=1)[None, :] - 2.0 * (X @ C.T)
    return np.maximum(D, 0.0)


def kmeans(X, k, rng, n_init=10, max_iter=300):
    """k-means++ seeding (Arthur & Vassilvitskii 2007) + Lloyd's iterations, best of n_init."""
    n = len(X)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres = [X[rng.integers(n)]]
        closest = pairwise_sq_dists(X, centres[0][None])[:, 0]
        for _ in range(1, k):
            p = closest / closest.sum() if closest.sum() > 0 else np.full(n, 1.0 / n)
            cand = rng.choice(n, 2 + int(math.log(k)), p=p)
            d = np.minimum(closest[None, :], pairwise_sq_dists(X[cand], X))
            j = int(np.argmin(d.sum(axis=1)))
            centres.append(X[cand[j]])
            closest = d[j]
        centres = np.array(centres)
        for _ in range(max_iter):
            labels = np.argmin(pairwise_sq_dists(X, centres), axis=1)
            new = np.array([X[labels == j].mean(axis=0) if (labels == j).any() else centres[j]
                            for j in range(k)])
            if np.allclose(new, centres, atol=1e-10):
                break
            centres = new
        d = pairwise_sq_dists(X, centres)
        labels = np.argmin(d, axis=1)
        inertia = float(d[np.arange(n), labels].sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def affinity(X, n_neighbors=25, scale_neighbor=7):
    """Gaussian affinities on the symmetric n_neighbors-nearest-neighbour graph, with the local
    scaling of Zelnik-Manor & Perona (NIPS 2004): W_ij = exp(-d_ij^2 / (s_i s_j)), s_i the
    distance from i to its scale_neighbor-th neighbour."""
    n = len(X)
    D2 = pairwise_sq_dists(X)
    np.fill_diagonal(D2, np.inf)
    nbrs = np.argpartition(D2, n_neighbors, axis=1)[:, :n_neighbors]
    s = np.sqrt(np.sort(np.take_along_axis(D2, nbrs, axis=1), axis=1)[:, scale_neighbor - 1])
    rows = np.repeat(np.arange(n), n_neighbors)
    cols = nbrs.ravel()
    w = np.exp(-D2[rows, cols] / np.maximum(s[rows] * s[cols], 1e-12))
    W = csr_matrix((w, (rows, cols)), shape=(n, n))
    return W.maximum(W.T)


def cluster(X, n_clusters, rng):
    """Spectral clustering of Ng, Jordan & Weiss (NIPS 2001): the k leading eigenvectors of
    D^-1/2 W D^-1/2, rows normalized to unit length, clustered by k-means."""
    X = np.asarray(X, dtype=np.float64)
    W = affinity(X)
    d = np.asarray(W.sum(axis=1)).ravel()
    inv = diags(1.0 / np.sqrt(np.maximum(d, 1e-12)))
    L = inv @ W @ inv
    _, U = eigsh(L, k=n_clusters, which="LA", v0=rng.standard_normal(len(X)), tol=1e-8)
    U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
    return kmeans(U, n_clusters, rng)
