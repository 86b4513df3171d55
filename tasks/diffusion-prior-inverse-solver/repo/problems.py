"""The inverse problems of the visible settings (fixed file).

A problem is a Gaussian-mixture prior (the "pretrained diffusion model", exact here), a linear
operator A, a noise level s and a budget: `nfe` denoiser evaluations to draw `n_per` posterior
samples for each of `n_meas` measurements y_j = A x*_j + s * e_j, x*_j drawn from the prior. The
prior (means, covariances, weights), the operator's randomness and the measurements are drawn
from the run's seed, so every seed is a fresh instance of the same kind of problem. A problem can
also be given as a JSON file holding the same fields (an explicit matrix operator allowed).

At the final evaluation the harness receives a salt (an integer unknown to the solver's author, sent
over the environment's secrets channel, never a file) that is mixed into every seed, so the final
instances cannot be computed in advance from this file; without it (during development) it is 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIGMA_MIN = 0.002   # the denoiser is defined ("trained") on sigma in [SIGMA_MIN, SIGMA_MAX] (EDM)
SIGMA_MAX = 80.0

PROBLEMS = {
    "inpaint-32d": dict(dim=32, n_components=5, radius=3.0, eig_range=(0.02, 0.5), base_seed=21,
                        operator=dict(kind="inpaint", keep=0.15), noise=0.05, nfe=40,
                        n_meas=8, n_per=200),
    "blur-48d": dict(dim=48, n_components=4, radius=3.0, eig_range=(0.01, 0.5), base_seed=22,
                     operator=dict(kind="blur", width=3.0), noise=0.2, nfe=60,
                     n_meas=8, n_per=200),
    "cs-64d": dict(dim=64, n_components=6, radius=4.0, eig_range=(0.01, 1.0), base_seed=23,
                   operator=dict(kind="cs", m=8), noise=0.3, nfe=30,
                   n_meas=8, n_per=200),
}


def load_salt(path: str | Path | None = None) -> int:
    """The salt: from ``path`` (the grader's copy), else from the secrets channel, else 0."""
    if path is not None:
        p = Path(path)
        return int(json.loads(p.read_text())["salt"]) if p.is_file() else 0
    from taskkit import read_secret

    text = read_secret("salt.json")
    return int(json.loads(text)["salt"]) if text else 0


def make_prior(spec: dict, seed: int, salt: int = 0):
    """Centred mixture: means on a sphere of radius `radius`, Haar-rotated covariances with
    log-uniform eigenvalues in eig_range, Dirichlet(2) weights."""
    from gmm import GaussianMixture, random_rotation

    d, K = int(spec["dim"]), int(spec["n_components"])
    lo, hi = spec["eig_range"]
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), 0, int(salt)])
    means = rng.standard_normal((K, d))
    means *= float(spec["radius"]) / np.linalg.norm(means, axis=1, keepdims=True)
    eig = np.exp(rng.uniform(np.log(lo), np.log(hi), (K, d)))
    w = rng.dirichlet(2.0 * np.ones(K))
    means -= w @ means
    rot = np.stack([random_rotation(d, rng) for _ in range(K)])
    return GaussianMixture(w, means, eig, rot)


def make_operator(spec: dict, seed: int, salt: int = 0) -> np.ndarray:
    """The measurement matrix A of shape (m, dim)."""
    d, op = int(spec["dim"]), spec["operator"]
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), 1, int(salt)])
    kind = op["kind"]
    if kind == "inpaint":               # keep a random subset of the coordinates
        m = max(1, int(round(op["keep"] * d)))
        idx = np.sort(rng.choice(d, size=m, replace=False))
        return np.eye(d)[idx]
    if kind == "blur":                  # circular Gaussian blur of a 1-D signal, rows sum to 1
        off = np.arange(d)
        dist = np.minimum(off, d - off)
        k = np.exp(-0.5 * (dist / float(op["width"])) ** 2)
        k /= k.sum()
        return np.stack([np.roll(k, i) for i in range(d)])
    if kind == "cs":                    # Gaussian compressed sensing, rows of norm ~ 1
        m = int(op["m"])
        return rng.standard_normal((m, d)) / np.sqrt(d)
    if kind == "matrix":
        A = np.asarray(op["A"], dtype=np.float64)
        if A.ndim != 2 or A.shape[1] != d:
            raise ValueError("operator matrix must have shape (m, dim)")
        return A
    raise ValueError(f"unknown operator kind {kind!r}")


def build(spec: dict, seed: int, salt: int = 0):
    """-> dict(prior, A, noise, y (n_meas*n_per, m), x_true (n_meas, d), nfe, n_meas, n_per).
    Row i of y is the measurement of sample i: sample rows j*n_per .. (j+1)*n_per - 1 share
    measurement j."""
    prior = make_prior(spec, seed, salt)
    A = make_operator(spec, seed, salt)
    n_meas, n_per, s = int(spec["n_meas"]), int(spec["n_per"]), float(spec["noise"])
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), 2, int(salt)])
    x_true = prior.sample(n_meas, rng)
    y_meas = x_true @ A.T + s * rng.standard_normal((n_meas, A.shape[0]))
    return dict(prior=prior, A=A, noise=s, y_meas=y_meas, y=np.repeat(y_meas, n_per, axis=0),
                x_true=x_true, nfe=int(spec["nfe"]), n_meas=n_meas, n_per=n_per)
