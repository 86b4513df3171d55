"""Gaussian mixtures with an exact denoiser at every noise level (fixed file).

Data x0 ~ sum_k w_k N(mu_k, Sigma_k), Sigma_k = U_k diag(lam_k) U_k^T. Under the variance-exploding
(EDM) forward process x = x0 + sigma * eps, the noisy marginal is sum_k w_k N(mu_k, Sigma_k + sigma^2 I),
and the ideal denoiser D(x; sigma) = E[x0 | x] is available in closed form:
    D(x; sigma) = sum_k r_k(x) [mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (x - mu_k)],
with r_k(x) the posterior component probabilities. The score is (D(x; sigma) - x) / sigma^2.
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

    @classmethod
    def from_spec(cls, spec: dict) -> "GaussianMixture":
        """spec: weights (K,), means (K, d), eigvals (K, d), rotation_seed (int)."""
        means = np.asarray(spec["means"], dtype=np.float64)
        K, d = means.shape
        rng = np.random.default_rng(int(spec["rotation_seed"]))
        rotations = np.stack([random_rotation(d, rng) for _ in range(K)])
        return cls(spec["weights"], means, spec["eigvals"], rotations)

    # ---- exact quantities -------------------------------------------------------------
    def component_cov(self, k: int) -> np.ndarray:
        return (self.U[k] * self.lam[k]) @ self.U[k].T

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean and covariance of the data distribution."""
        m = self.w @ self.mu
        C = np.zeros((self.d, self.d))
        for k in range(self.K):
            dm = self.mu[k] - m
            C += self.w[k] * (self.component_cov(k) + np.outer(dm, dm))
        return m, C

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Exact samples from the data distribution."""
        z = rng.choice(self.K, size=n, p=self.w)
        e = rng.standard_normal((n, self.d))
        x = np.empty((n, self.d))
        for k in range(self.K):
            idx = z == k
            x[idx] = self.mu[k] + (e[idx] * np.sqrt(self.lam[k])) @ self.U[k].T
        return x

    def denoise(self, x: np.ndarray, sigma: float, chunk: int = 4096) -> np.ndarray:
        """Exact D(x; sigma) = E[x0 | x0 + sigma * eps = x] for a batch x of shape (n, d)."""
        K, d = self.K, self.d
        v = self.lam + sigma * sigma                                   # (K, d)
        W = self.U / np.sqrt(v)[:, None, :]                            # whitening, (K, d, d)
        A = np.einsum("kij,kj,klj->kil", self.U, self.lam / v, self.U)  # Sigma (Sigma + s^2 I)^-1
        B = np.concatenate([W.transpose(1, 0, 2).reshape(d, K * d),
                            A.transpose(1, 0, 2).reshape(d, K * d)], axis=1)
        mu_w = np.einsum("ki,kij->kj", self.mu, W)
        offset = self.mu - np.einsum("ki,kij->kj", self.mu, A)
        log_c = np.log(self.w) - 0.5 * np.log(v).sum(axis=1)
        out = np.empty_like(x, dtype=np.float64)
        for a in range(0, x.shape[0], chunk):
            P = x[a:a + chunk] @ B
            Y = P[:, :K * d].reshape(-1, K, d) - mu_w
            logp = log_c - 0.5 * np.einsum("nkd,nkd->nk", Y, Y)
            logp -= logp.max(axis=1, keepdims=True)
            r = np.exp(logp)
            r /= r.sum(axis=1, keepdims=True)
            out[a:a + chunk] = r @ offset + np.einsum("nk,nkd->nd", r, P[:, K * d:].reshape(-1, K, d))
        return out
