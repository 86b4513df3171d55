def _pca(X, dim):
    X = X - X.mean(axis=0)
    if X.shape[1] <= dim:
        return X
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    return U[:, :dim] * S[:dim]


def _sq_dist(A):
    sq = np.einsum("ij,ij->i", A, A)
    D = sq[:, None] + sq[None, :] - 2.0 * (A @ A.T)
    np.maximum(D, 0.0, out=D)
    return D


def _joint_probabilities(X, perplexity):
    """p_j|i = exp(-beta_i d_ij^2) / sum over the 3 * perplexity nearest neighbours (van der
    Maaten 2014: the rest is ~0), beta_i by bisection so that the row's entropy is
    log(perplexity); then P = (P + P^T) / 2n."""
    n = len(X)
    D = _sq_dist(X)
    np.fill_diagonal(D, np.inf)
    k = min(n - 1, int(3 * perplexity))
    nn = np.argsort(D, axis=1)[:, :k]
    d = np.take_along_axis(D, nn, axis=1)
    d = d - d[:, :1]  # shift per row: the same conditional probabilities, no underflow
    lo, hi = np.zeros(n), np.full(n, np.inf)
    beta = np.ones(n) / max(np.median(d), 1e-12)
    target = math.log(perplexity)
    for _ in range(64):
        w = np.exp(-d * beta[:, None])
        sw = w.sum(axis=1)
        H = np.log(sw) + beta * (d * w).sum(axis=1) / sw
        up = H > target  # entropy too high: raise beta
        lo = np.where(up, beta, lo)
        hi = np.where(up, hi, beta)
        beta = np.where(np.isinf(hi), beta * 2.0, (lo + hi) / 2.0)
    w = np.exp(-d * beta[:, None])
    P = np.zeros((n, n))
    np.put_along_axis(P, nn, w / w.sum(axis=1, keepdims=True), axis=1)
    P = (P + P.T) / (2.0 * n)
    return np.maximum(P, 1e-12)


def embed(X, n_components=2, seed=0):
    """t-SNE (van der Maaten & Hinton, JMLR 2008), exact gradient: PCA to 50 dimensions,
    perplexity 30, Student-t kernel in the embedding, gradient descent with momentum (0.5, then
    0.8) and the delta-bar-delta gains of the original implementation, learning rate 200,
    early exaggeration 12 for the first 250 of 1000 iterations, random N(0, 1e-4) start."""
    rng = np.random.default_rng(seed)
    X = _pca(np.asarray(X, dtype=np.float64), 50)
    n = len(X)
    # the gradient loop in float32, the embedding stored as (n_components, n): its n x n
    # passes are its whole cost
    P = _joint_probabilities(X, 30.0).astype(np.float32)
    P_early = 12.0 * P  # early exaggeration
    Y = (1e-4 * rng.standard_normal((n_components, n))).astype(np.float32)
    update = np.zeros_like(Y)
    gains = np.ones_like(Y)
    grad = np.empty_like(Y)
    num = np.empty((n, n), dtype=np.float32)
    tmp = np.empty_like(num)
    for it in range(1000):
        Pe, momentum = (P_early, 0.5) if it < 250 else (P, 0.8)
        num.fill(1.0)
        for y in Y:  # 1 + |y_i - y_j|^2
            np.subtract.outer(y, y, out=tmp)
            tmp *= tmp
            num += tmp
        np.reciprocal(num, out=num)  # the Student-t kernel
        np.fill_diagonal(num, 0.0)
        Z = num.sum(dtype=np.float64)
        np.multiply(Pe, num, out=tmp)  # (p_ij - q_ij) (1 + d_ij^2)^-1, q_ij = num_ij / Z
        num *= num
        num *= np.float32(1.0 / Z)
        tmp -= num
        rows = tmp.sum(axis=1)
        for c, y in enumerate(Y):
            grad[c] = 4.0 * (rows * y - tmp @ y)
        same = (grad > 0) == (update > 0)
        gains = np.maximum(np.where(same, gains * 0.8, gains + 0.2), 0.01)
        update = momentum * update - 200.0 * gains * grad
        Y = Y + update
        Y -= Y.mean(axis=1, keepdims=True)
    return Y.T.astype(np.float64)
