"""Gaussian-mixture priors with an exact denoiser and its vector-Jacobian product (fixed file).

Prior x0 ~ sum_k w_k N(mu_k, Sigma_k), Sigma_k = U_k diag(lam_k) U_k^T. Under the variance-exploding
(EDM) forward process x = x0 + sigma * eps the noisy marginal is sum_k w_k N(mu_k, Sigma_k + sigma^2 I)
and the ideal denoiser D(x; sigma) = E[x0 | x] is exact:
    D(x; sigma) = sum_k r_k(x) m_k(x),  m_k(x) = mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (x - mu_k),
with r_k(x) the posterior component probabilities. The score is (D(x; sigma) - x) / sigma^2, and the
Jacobian dD/dx = Cov[x0 | x] / sigma^2 is symmetric, so J^T v = J v.
"""
from __future__ import annotations

import numpy as np


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


class GaussianMixture:
    def __init__(self, weights, means, eigvals, rotations):
        self.w = np.asarray(weights, dtype=np.float64)
        self.w = self.w / self.w.sum()
        self.mu = np.asarray(means, dtype=np.float64)
        self.lam = np.asarray(eigvals, dtype=np.float64)
        self.U = np.asarray(rotations, dtype=np.float64)
        self.K, self.d = self.mu.shape
        if self.lam.shape != (self.K, self.d) or self.U.shape != (self.K, self.d, self.d):
            raise ValueError("inconsistent mixture parameter shapes")
        if np.any(self.lam <= 0) or np.any(self.w <= 0):
            raise ValueError("eigenvalues and weights must be positive")

    def component_cov(self, k: int) -> np.ndarray:
        return (self.U[k] * self.lam[k]) @ self.U[k].T

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Exact samples from the prior."""
        z = rng.choice(self.K, size=n, p=self.w)
        e = rng.standard_normal((n, self.d))
        x = np.empty((n, self.d))
        for k in range(self.K):
            idx = z == k
            x[idx] = self.mu[k] + (e[idx] * np.sqrt(self.lam[k])) @ self.U[k].T
        return x

    def _parts(self, x: np.ndarray, sigma: float):
        """Per component: responsibilities r (n, K), whitened coordinates Y_k, shrink factors."""
        v = self.lam + sigma * sigma                                   # (K, d)
        Ys = [(x - self.mu[k]) @ self.U[k] for k in range(self.K)]     # eigen-coordinates
        logp = np.stack([np.log(self.w[k]) - 0.5 * np.log(v[k]).sum()
                         - 0.5 * (Ys[k] ** 2 / v[k]).sum(axis=1) for k in range(self.K)], axis=1)
        logp -= logp.max(axis=1, keepdims=True)
        r = np.exp(logp)
        r /= r.sum(axis=1, keepdims=True)
        return r, Ys, v

    def denoise(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """Exact D(x; sigma) = E[x0 | x0 + sigma * eps = x] for a batch x of shape (n, d)."""
        r, Ys, v = self._parts(x, sigma)
        out = np.zeros_like(x, dtype=np.float64)
        for k in range(self.K):
            mk = self.mu[k] + (Ys[k] * (self.lam[k] / v[k])) @ self.U[k].T
            out += r[:, k:k + 1] * mk
        return out

    def denoise_vjp(self, x: np.ndarray, sigma: float, vec: np.ndarray):
        """(D(x; sigma), J^T vec) with J = dD/dx, row by row (vec of shape (n, d))."""
        r, Ys, v = self._parts(x, sigma)
        n = x.shape[0]
        ms, gs, avs = [], [], []
        for k in range(self.K):
            ms.append(self.mu[k] + (Ys[k] * (self.lam[k] / v[k])) @ self.U[k].T)
            gs.append(-(Ys[k] / v[k]) @ self.U[k].T)                   # grad log N(x; mu_k, V_k)
            avs.append(((vec @ self.U[k]) * (self.lam[k] / v[k])) @ self.U[k].T)
        D = sum(r[:, k:k + 1] * ms[k] for k in range(self.K))
        gbar = sum(r[:, k:k + 1] * gs[k] for k in range(self.K))
        jv = np.zeros((n, self.d))
        for k in range(self.K):
            c = ((ms[k] - D) * vec).sum(axis=1, keepdims=True)
            jv += r[:, k:k + 1] * (avs[k] + c * (gs[k] - gbar))
        return D, jv
