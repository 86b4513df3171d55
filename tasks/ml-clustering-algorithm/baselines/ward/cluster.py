

def pairwise_sq_dists(X):
    """Squared Euclidean distances between all rows of X, (n, n), clipped at 0."""
    sq = (X * X).sum(axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0)


def ward_merges(X):
    """Ward's minimum-variance agglomeration (Ward 1963) by the nearest-neighbour chain
    (Murtagh 1983): on squared Euclidean distances, the Lance-Williams update
    d(k, i+j) = ((n_i + n_k) d(k, i) + (n_j + n_k) d(k, j) - n_k d(i, j)) / (n_i + n_j + n_k).
    Returns the n - 1 merges (height, slot a, slot b); the merged cluster keeps slot a."""
    n = len(X)
    D = pairwise_sq_dists(X)
    np.fill_diagonal(D, np.inf)
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    merges, chain = [], []
    for _ in range(n - 1):
        while True:
            if not chain:
                chain.append(int(np.flatnonzero(alive)[0]))
            a = chain[-1]
            b = int(np.argmin(D[a]))
            if len(chain) > 1 and D[a, chain[-2]] <= D[a, b]:
                b = chain[-2]
            if len(chain) > 1 and b == chain[-2]:
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        h, na, nb = D[a, b], size[a], size[b]
        new = ((na + size) * D[a] + (nb + size) * D[b] - size * h) / (na + nb + size)
        D[a, :] = new
        D[:, a] = new
        D[a, a] = np.inf
        D[b, :] = np.inf
        D[:, b] = np.inf
        size[a] += nb
        alive[b] = False
        merges.append((float(h), a, b))
    return merges


def cut(n, merges, k):
    """The partition into k clusters: the n - k lowest merges (Ward's heights are monotone)."""
    root = np.arange(n)

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for h, a, b in sorted(merges)[: n - k]:
        root[find(b)] = find(a)
    roots = np.array([find(i) for i in range(n)])
    return np.unique(roots, return_inverse=True)[1]


def cluster(X, n_clusters, rng):
    """Agglomerative clustering with Ward's linkage (Ward 1963), cut at n_clusters clusters."""
    X = np.asarray(X, dtype=np.float64)
    return cut(len(X), ward_merges(X), n_clusters)
