def embed(X, n_components=2, seed=0):
    """PCA (Pearson 1901; Hotelling 1933): the projection on the n_components directions of
    largest variance, from the SVD of the centered points. Deterministic (signs fixed)."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    U = U[:, :n_components] * np.sign(
        U[np.abs(U[:, :n_components]).argmax(axis=0), np.arange(n_components)]
    )
    return U * S[:n_components]
