"""The data distributions of the visible settings (fixed file).

Each problem is a centred Gaussian mixture with anisotropic, randomly rotated components whose
means lie on a sphere of radius `radius` (well separated relative to the component widths), plus
the sampling budget: `nfe` denoiser calls to draw `n_samples` samples. A problem can also be given
as a JSON file holding an explicit spec (weights, means, eigvals, rotation_seed, nfe, n_samples).
"""
from __future__ import annotations


import numpy as np

SIGMA_MIN = 0.002   # the denoiser is defined ("trained") on sigma in [SIGMA_MIN, SIGMA_MAX] (EDM)
SIGMA_MAX = 80.0

PROBLEMS = {
    "gmm2d-8modes": dict(dim=2, n_components=8, radius=4.0, eig_range=(1e-2, 0.5), seed=11,
                         nfe=5, n_samples=50_000),
    "gmm16d-6modes": dict(dim=16, n_components=6, radius=5.0, eig_range=(1e-3, 0.3), seed=12,
                          nfe=8, n_samples=60_000),
    "gmm64d-4modes": dict(dim=64, n_components=4, radius=8.0, eig_range=(1e-3, 1.0), seed=13,
                          nfe=10, n_samples=40_000),
}


def make_spec(dim, n_components, radius, eig_range, seed, nfe, n_samples) -> dict:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_components, dim))
    means *= radius / np.linalg.norm(means, axis=1, keepdims=True)
    eigvals = np.exp(rng.uniform(np.log(eig_range[0]), np.log(eig_range[1]), (n_components, dim)))
    weights = rng.dirichlet(2.0 * np.ones(n_components))
    means -= weights @ means                      # centred data, as after normalisation
    return dict(weights=weights.tolist(), means=means.tolist(), eigvals=eigvals.tolist(),
                rotation_seed=seed + 1000, nfe=nfe, n_samples=n_samples)


def build(spec: dict):
    """-> (GaussianMixture, nfe budget, number of samples)."""
    from gmm import GaussianMixture

    return GaussianMixture.from_spec(spec), int(spec["nfe"]), int(spec["n_samples"])
