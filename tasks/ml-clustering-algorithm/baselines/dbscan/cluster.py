
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


def pairwise_dists(X):
    """Euclidean distances between all rows of X, (n, n)."""
    sq = (X * X).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0))


def dbscan(D, eps, min_pts):
    """DBSCAN (Ester, Kriegel, Sander & Xu, KDD 1996): core points have at least min_pts
    points (themselves included) within eps; clusters are the connected components of the core
    points under the eps-neighbourhood; a border point joins its nearest core point's cluster;
    the rest is noise (-1)."""
    near = D <= eps
    core = near.sum(axis=1) >= min_pts
    labels = np.full(len(D), -1)
    if not core.any():
        return labels
    idx = np.flatnonzero(core)
    _, comp = connected_components(csr_matrix(near[np.ix_(idx, idx)]), directed=False)
    labels[idx] = comp
    border = np.flatnonzero(~core & near[:, core].any(axis=1))
    if len(border):
        labels[border] = comp[np.argmin(D[np.ix_(border, idx)], axis=1)]
    return labels


def cluster(X, n_clusters, rng):
    """DBSCAN with min_pts = 2 dim (Sander et al. 1998; Schubert et al., TODS 2017), clipped to
    [4, 20], and eps read off the sorted min_pts-distance graph: among 40 quantiles of the
    min_pts-distances, the eps whose clustering has the number of clusters closest to
    n_clusters, ties broken by the fewest noise points."""
    X = np.asarray(X, dtype=np.float64)
    D = pairwise_dists(X)
    min_pts = int(np.clip(2 * X.shape[1], 4, 20))
    kdist = np.sort(D, axis=1)[:, min_pts - 1]
    best, best_key = None, None
    for eps in np.unique(np.quantile(kdist, np.linspace(0.05, 0.995, 40))):
        labels = dbscan(D, eps, min_pts)
        found = len(np.unique(labels[labels >= 0]))
        key = (abs(found - n_clusters), int((labels < 0).sum()))
        if best_key is None or key < best_key:
            best, best_key = labels, key
    return best
