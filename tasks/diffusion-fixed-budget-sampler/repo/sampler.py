"""The sampler under study: the EDITABLE file of this task (every line below the marker).

Contract (kept by every submission):
    sample(denoise, shape, nfe, sigma_min, sigma_max, rng) -> np.ndarray of `shape`, float, finite.

    denoise(x, sigma) -> D(x; sigma), the exact denoiser E[x0 | x0 + sigma * eps = x] of the
        (hidden-from-you) data distribution, for the VE / EDM process x = x0 + sigma * eps.
        x must be a float array of exactly `shape` (the whole batch), sigma a scalar in
        [sigma_min, sigma_max]. The score is (D(x; sigma) - x) / sigma**2. Each call costs one
        function evaluation (NFE); the harness refuses call number nfe + 1, and a run that
        attempts it fails.
    shape: (n_samples, dim).
    nfe: the budget of denoiser calls for the whole batch.
    sigma_min, sigma_max: the noise range the denoiser is defined on (0.002, 80).
    rng: a numpy Generator seeded by the harness; use it for every random draw.

The returned rows are the samples; they are scored against the exact data distribution.
Allowed imports in this file: numpy, math.
"""
# ---- editable region starts here ----------------------------------------------------------
import math

import numpy as np


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    """Euler on the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma
    (= deterministic DDIM, Song et al. 2021), EDM time steps (rho = 7), last step to sigma = 0.
    One denoiser call per step, so `nfe` steps."""
    sigmas = np.append(edm_sigmas(nfe, sigma_min, sigma_max), 0.0)
    x = rng.standard_normal(shape) * sigmas[0]
    for i in range(nfe):
        d = (x - denoise(x, sigmas[i])) / sigmas[i]
        x = x + (sigmas[i + 1] - sigmas[i]) * d
    return x
