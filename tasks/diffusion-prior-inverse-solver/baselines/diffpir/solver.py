import math

import numpy as np


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


LAMBDA = 1.0   # weight of the prior proximal term, rho_t = LAMBDA * s^2 / sigma_t^2
ZETA = 1.0     # share of fresh noise in the re-noising step (1 = DDPM-like, 0 = DDIM-like)


def solve(model, A, y, noise_std, nfe, rng):
    """DiffPIR (Zhu, Zhang, Liang, Cao, Wen, Timofte & Van Gool 2023, CVPR workshops, Alg. 1):
    plug-and-play half-quadratic splitting inside the reverse diffusion. Per step: the denoiser
    gives x0_hat = D(x_t; sigma_t); the data subproblem is solved in closed form,
    x0 = argmin ||y - A x||^2 + rho_t ||x - x0_hat||^2 = (A^T A + rho_t I)^-1 (A^T y + rho_t x0_hat),
    rho_t = LAMBDA s^2 / sigma_t^2; then x_{t-1} = x0 + sigma_{t-1} (sqrt(1 - ZETA) eps_hat +
    sqrt(ZETA) eps), eps_hat = (x_t - x0) / sigma_t. One denoiser call per step, nfe steps; the
    last step returns the data-consistent x0."""
    n, d = model.shape
    AtA, Aty = A.T @ A, y @ A
    sigmas = np.append(edm_sigmas(nfe, model.sigma_min, model.sigma_max), 0.0)
    x = rng.standard_normal((n, d)) * sigmas[0]
    for i in range(nfe):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = model.denoise(x, s)
        rho = LAMBDA * noise_std ** 2 / s ** 2
        x0 = np.linalg.solve(AtA + rho * np.eye(d), (Aty + rho * den).T).T
        eps_hat = (x - x0) / s
        x = x0 + s_next * (math.sqrt(1.0 - ZETA) * eps_hat
                           + math.sqrt(ZETA) * rng.standard_normal((n, d)))
    return x
