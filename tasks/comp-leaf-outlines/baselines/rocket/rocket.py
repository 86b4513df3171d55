"""ROCKET (Dempster, Petitjean & Webb, DMKD 34, 2020) in numpy: random dilated convolution
kernels; each gives two features per series, the proportion of positive values (PPV) and the
maximum of its output."""

import numpy as np


def make_kernels(length: int, n_kernels: int, rng: np.random.Generator) -> list[tuple]:
    kernels = []
    for _ in range(n_kernels):
        size = int(rng.choice([7, 9, 11]))
        w = rng.normal(0.0, 1.0, size)
        w -= w.mean()
        bias = rng.uniform(-1.0, 1.0)
        dilation = int(2 ** rng.uniform(0, np.log2((length - 1) / (size - 1))))
        pad = (size - 1) * dilation // 2 if rng.integers(2) else 0
        kernels.append((w, bias, dilation, pad))
    return kernels


def transform(X: np.ndarray, kernels: list[tuple]) -> np.ndarray:
    """(n, L) series -> (n, 2 * len(kernels)) features."""
    n, length = X.shape
    out = np.empty((n, 2 * len(kernels)), dtype=np.float32)
    for k, (w, bias, dilation, pad) in enumerate(kernels):
        Xp = np.pad(X, ((0, 0), (pad, pad))) if pad else X
        span = (len(w) - 1) * dilation
        m = Xp.shape[1] - span
        conv = np.full((n, m), bias)
        for j, wj in enumerate(w):
            conv += wj * Xp[:, j * dilation : j * dilation + m]
        out[:, 2 * k] = (conv > 0).mean(axis=1)
        out[:, 2 * k + 1] = conv.max(axis=1)
    return out
