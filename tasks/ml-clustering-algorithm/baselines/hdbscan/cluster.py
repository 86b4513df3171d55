

def pairwise_dists(X):
    """Euclidean distances between all rows of X, (n, n)."""
    sq = (X * X).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (X @ X.T), 0.0))


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


def single_linkage_tree(n, edges):
    """The dendrogram of the MST: internal node n + t merges the two roots of edge t (in order
    of weight); returns left, right, height and size of all 2n - 1 nodes."""
    left = np.full(2 * n - 1, -1)
    right = np.full(2 * n - 1, -1)
    height = np.zeros(2 * n - 1)
    size = np.ones(2 * n - 1, dtype=np.int64)
    root = np.arange(2 * n - 1)

    def find(i):
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for t, (i, j, w) in enumerate(sorted(edges, key=lambda e: e[2])):
        a, b, node = find(i), find(j), n + t
        left[node], right[node], height[node] = a, b, w
        size[node] = size[a] + size[b]
        root[a] = root[b] = node
    return left, right, height, size


def leaves(node, left, right):
    out, stack = [], [node]
    while stack:
        v = stack.pop()
        if left[v] < 0:
            out.append(v)
        else:
            stack += [left[v], right[v]]
    return out


def hdbscan(X, min_samples, min_cluster_size):
    """HDBSCAN* (Campello, Moulavi & Sander, PAKDD 2013; TKDD 2015): the single-linkage tree of
    the mutual reachability distance max(core(a), core(b), d(a, b)), condensed with
    min_cluster_size, and the flat clustering of maximal excess of mass (stability)."""
    n = len(X)
    D = pairwise_dists(X)
    core = np.sort(D, axis=1)[:, min_samples - 1]
    M = np.maximum(D, np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(M, 0.0)
    left, right, height, size = single_linkage_tree(n, minimum_spanning_tree(M))
    # condensed tree: cluster 0 is the root; birth lambda, stability, parent per cluster
    birth, stability, parent = [0.0], [0.0], [-1]
    fell_from = np.zeros(n, dtype=np.int64)
    stack = [(2 * n - 2, 0)]
    while stack:
        node, c = stack.pop()
        lam = 1.0 / max(height[node], 1e-12)
        kids = [left[node], right[node]]
        big = [v for v in kids if size[v] >= min_cluster_size]
        for v in kids:
            if v not in big or len(big) == 2:
                stability[c] += size[v] * (lam - birth[c])
        if len(big) == 2:
            for v in big:
                birth.append(lam)
                stability.append(0.0)
                parent.append(c)
                stack.append((v, len(birth) - 1))
        else:
            for v in kids:
                if v in big:
                    stack.append((v, c))
                else:
                    fell_from[leaves(v, left, right)] = c
    k = len(birth)
    parent = np.array(parent)
    chosen = np.zeros(k, dtype=bool)
    best = np.zeros(k)
    for c in range(k - 1, 0, -1):  # children have larger ids than their parent
        kids = np.flatnonzero(parent == c)
        below = best[kids].sum() if len(kids) else 0.0
        if len(kids) == 0 or stability[c] >= below:
            chosen[c], best[c] = True, stability[c]
        else:
            best[c] = below
    owner = np.full(k, -1)
    for c in range(1, k):  # the selected cluster at or above c (excess of mass: the topmost)
        owner[c] = owner[parent[c]] if owner[parent[c]] >= 0 else (c if chosen[c] else -1)
    return owner[fell_from]


def cluster(X, n_clusters, rng):
    """HDBSCAN* with min_samples = 10 and min_cluster_size = n / (5 n_clusters) (at least 5);
    noise points are labelled -1."""
    X = np.asarray(X, dtype=np.float64)
    labels = hdbscan(X, 10, max(5, len(X) // (5 * n_clusters)))
    return np.unique(labels, return_inverse=True)[1] - (1 if (labels < 0).any() else 0)
