def _sq_dist(A):
    sq = np.einsum("ij,ij->i", A, A)
    D = sq[:, None] + sq[None, :] - 2.0 * (A @ A.T)
    np.maximum(D, 0.0, out=D)
    return D


def _fuzzy_graph(X, k):
    """The fuzzy simplicial set: w_ij = exp(-(d_ij - rho_i) / sigma_i) over the k - 1 nearest
    neighbours (k counts the point itself), rho_i the distance to the nearest, sigma_i by
    bisection so that sum_j w_ij = log2(k); symmetrized by the fuzzy union w + w^T - w o w^T."""
    import scipy.sparse

    n = len(X)
    D = _sq_dist(X)
    np.fill_diagonal(D, np.inf)
    nn = np.argsort(D, axis=1)[:, : k - 1]
    d = np.sqrt(np.take_along_axis(D, nn, axis=1))
    rho = d[:, 0]
    target = math.log2(k)
    lo, hi, sigma = np.zeros(n), np.full(n, np.inf), np.ones(n)
    for _ in range(64):
        s = np.exp(-np.maximum(d - rho[:, None], 0.0) / sigma[:, None]).sum(axis=1)
        big = s > target  # too much mass: shrink sigma
        hi = np.where(big, sigma, hi)
        lo = np.where(big, lo, sigma)
        sigma = np.where(np.isinf(hi), sigma * 2.0, (lo + hi) / 2.0)
    sigma = np.maximum(sigma, 1e-3 * max(d.mean(), 1e-12))
    w = np.exp(-np.maximum(d - rho[:, None], 0.0) / sigma[:, None])
    W = scipy.sparse.csr_matrix(
        (w.ravel(), (np.repeat(np.arange(n), k - 1), nn.ravel())), shape=(n, n)
    )
    return (W + W.T - W.multiply(W.T)).tocoo()


def _spectral_init(G, n_components, rng):
    """The eigenvectors of the normalized graph Laplacian after the trivial one, scaled to
    [-10, 10] (UMAP's initialization), plus a little noise; random if it does not converge."""
    import scipy.sparse
    import scipy.sparse.linalg

    n = G.shape[0]
    deg = np.asarray(G.sum(axis=1)).ravel()
    Dh = scipy.sparse.diags(1.0 / np.sqrt(deg))
    A = (Dh @ G.tocsr() @ Dh).tocsr()
    try:
        vals, vecs = scipy.sparse.linalg.eigsh(
            A, k=n_components + 1, which="LA", tol=1e-4, v0=np.ones(n), maxiter=n * 5
        )
        Y = vecs[:, np.argsort(vals)[::-1][1 : n_components + 1]]
    except (scipy.sparse.linalg.ArpackError, scipy.sparse.linalg.ArpackNoConvergence):
        Y = rng.uniform(-10.0, 10.0, size=(n, n_components))
    Y = 10.0 * Y / np.abs(Y).max()
    return Y + rng.normal(scale=1e-4, size=Y.shape)


def _fit_ab(min_dist, spread):
    """a, b of the curve 1 / (1 + a d^2b) closest to 1 below min_dist and
    exp(-(d - min_dist) / spread) beyond it (least squares, as UMAP fits them)."""
    import scipy.optimize

    x = np.linspace(0.0, 3.0 * spread, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = scipy.optimize.curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), x, y)
    return a, b


def embed(X, n_components=2, seed=0):
    """UMAP (McInnes, Healy & Melville, arXiv:1802.03426, 2018): the fuzzy 15-NN graph, a
    spectral start, then stochastic gradient descent on the fuzzy-set cross entropy with
    low-dimensional similarity 1 / (1 + a d^2b) (a, b from min_dist = 0.1, spread = 1): each
    edge is sampled in proportion to its weight (every max_w / w_ij epochs) and pulls its two
    ends together; each sample pushes its head away from 5 random points (negative sampling);
    gradients clipped at 4; learning rate 1 decaying linearly over 500 epochs. The updates of
    one epoch are applied together (vectorized), not one edge at a time."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    G = _fuzzy_graph(X, 15)
    Y = _spectral_init(G, n_components, rng)
    a, b = _fit_ab(0.1, 1.0)
    n_epochs, n_neg = 500, 5
    keep = G.data >= G.data.max() / n_epochs
    head, tail, w = G.row[keep], G.col[keep], G.data[keep]
    every = w.max() / w  # epochs between two samples of an edge
    due = every.copy()
    for epoch in range(n_epochs):
        lr = 1.0 - epoch / n_epochs
        now = due <= epoch + 1
        due[now] += every[now]
        i, j = head[now], tail[now]
        diff = Y[i] - Y[j]
        d2 = (diff * diff).sum(axis=1)
        coef = -2 * a * b * np.maximum(d2, 1e-12) ** (b - 1) / (1 + a * d2**b)
        g = np.clip(coef[:, None] * diff, -4.0, 4.0)
        step = np.zeros_like(Y)
        for c in range(n_components):
            step[:, c] += np.bincount(i, g[:, c], n) - np.bincount(j, g[:, c], n)
        ii = np.repeat(i, n_neg)
        kk = rng.integers(0, n, size=len(ii))
        diff = Y[ii] - Y[kk]
        d2 = (diff * diff).sum(axis=1)
        coef = 2 * b / ((0.001 + d2) * (1 + a * d2**b))
        g = np.where((d2 > 0)[:, None], np.clip(coef[:, None] * diff, -4.0, 4.0), 4.0)
        g[ii == kk] = 0.0
        for c in range(n_components):
            step[:, c] += np.bincount(ii, g[:, c], n)
        Y += lr * step
    return Y
