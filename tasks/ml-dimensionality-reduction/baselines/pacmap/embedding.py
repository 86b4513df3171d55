def _sq_dist(A):
    sq = np.einsum("ij,ij->i", A, A)
    D = sq[:, None] + sq[None, :] - 2.0 * (A @ A.T)
    np.maximum(D, 0.0, out=D)
    return D


def _pairs(X, rng, n_nb=10, n_mn=5, n_fp=20):
    """PaCMAP's three pair sets: neighbour pairs (the n_nb nearest by the scaled distance
    d_ij^2 / (sigma_i sigma_j) among the n_nb + 50 nearest, sigma_i the mean distance to the
    4th-6th neighbours), mid-near pairs (the 2nd nearest of 6 random points) and further pairs
    (random non-neighbours)."""
    n = len(X)
    D = _sq_dist(X)
    np.fill_diagonal(D, np.inf)
    cand = np.argsort(D, axis=1)[:, : min(n - 1, n_nb + 50)]
    dc = np.take_along_axis(D, cand, axis=1)
    sig = np.maximum(np.sqrt(dc[:, 3:6]).mean(axis=1), 1e-10)
    scaled = dc / (sig[:, None] * sig[cand])
    nb = np.take_along_axis(cand, np.argsort(scaled, axis=1)[:, :n_nb], axis=1)
    rows = np.arange(n)
    mn = np.empty((n, n_mn), dtype=np.int64)
    for m in range(n_mn):
        s = (rows[:, None] + rng.integers(1, n, size=(n, 6))) % n  # 6 random others
        second = np.argsort(D[rows[:, None], s], axis=1)[:, 1]
        mn[:, m] = s[rows, second]
    fp = (rows[:, None] + rng.integers(1, n, size=(n, n_fp))) % n
    clash = (fp[:, :, None] == nb[:, None, :]).any(axis=2)
    while clash.any():  # redraw the ones that are neighbours
        fp[clash] = (np.nonzero(clash)[0] + rng.integers(1, n, size=clash.sum())) % n
        clash = (fp[:, :, None] == nb[:, None, :]).any(axis=2)
    pairs = lambda J: (np.repeat(rows, J.shape[1]), J.ravel())  # noqa: E731
    return pairs(nb), pairs(mn), pairs(fp)


def embed(X, n_components=2, seed=0):
    """PaCMAP (Wang, Huang, Rudin & Shaposhnik, JMLR 22, 2021): PCA to 100 dimensions (when
    d > 100), neighbour / mid-near / further pairs (10 / 5 / 20 per point), losses
    d~/(10 + d~), d~/(10000 + d~) and 1/(1 + d~) with d~ = 1 + |y_i - y_j|^2, weighted by the
    paper's three-phase schedule (mid-near weight 1000 -> 3 over 100 iterations, then 3, then 0;
    neighbour weight 2, 3, 1), full-batch Adam with learning rate 1 for 450 iterations from the
    PCA start scaled to standard deviation 0.01."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float64)
    X = X - X.min()
    X = X / max(X.max(), 1e-12)
    X = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    if X.shape[1] > 100:
        X = U[:, :100] * S[:100]
    n = len(X)
    sets = _pairs(X, rng)
    Y = U[:, :n_components] * S[:n_components]
    Y = 0.01 * Y / Y[:, 0].std()
    m, v = np.zeros_like(Y), np.zeros_like(Y)
    b1, b2, lr = 0.9, 0.999, 1.0
    for it in range(450):
        if it < 100:
            w = (2.0, (1 - it / 100) * 1000.0 + it / 100 * 3.0, 1.0)
        elif it < 200:
            w = (3.0, 3.0, 1.0)
        else:
            w = (1.0, 0.0, 1.0)
        grad = np.zeros_like(Y)
        for (i, j), wk, kind in zip(sets, w, ("nb", "mn", "fp")):
            if wk == 0.0:
                continue
            diff = Y[i] - Y[j]
            dt = 1.0 + (diff * diff).sum(axis=1)
            if kind == "nb":
                coef = wk * 20.0 / (10.0 + dt) ** 2
            elif kind == "mn":
                coef = wk * 20000.0 / (10000.0 + dt) ** 2
            else:
                coef = -wk * 2.0 / (1.0 + dt) ** 2
            g = coef[:, None] * diff
            for c in range(n_components):
                grad[:, c] += np.bincount(i, g[:, c], n) - np.bincount(j, g[:, c], n)
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        step = lr * math.sqrt(1 - b2 ** (it + 1)) / (1 - b1 ** (it + 1))
        Y -= step * m / (np.sqrt(v) + 1e-7)
    return Y
