import math

import numpy as np


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


ZETA = 2.0   # DPS step size (Chung et al. 2023: zeta_i = zeta / ||y - A x0_hat||, tuned per task;
#              one value for every setting here: the best task score of 0.3, 0.5, 1, 2, 3, 4, 6)


def solve(model, A, y, noise_std, nfe, rng):
    """Diffusion posterior sampling (DPS, Chung, Kim, Mccann, Klasky & Ye 2023 ICLR, Alg. 1):
    an ancestral step of the unconditional sampler from x0_hat = D(x; sigma), then a gradient step
    on ||y - A x0_hat(x)|| through the denoiser, x <- x - zeta / ||y - A x0_hat|| * grad. Each step
    needs D and one backward pass (2 NFE), so nfe // 2 steps; the last goes to sigma = 0."""
    n, d = model.shape
    steps = nfe // 2
    sigmas = np.append(edm_sigmas(steps, model.sigma_min, model.sigma_max), 0.0)
    x = rng.standard_normal((n, d)) * sigmas[0]
    for i in range(steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = model.denoise(x, s)
        res = den @ A.T - y                                         # (n, m)
        norm = np.sqrt((res ** 2).sum(axis=1, keepdims=True)) + 1e-12
        grad = model.vjp((res / norm) @ A)                         # grad_x ||A D(x) - y||
        s_up = math.sqrt(s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2)
        s_down = math.sqrt(s_next ** 2 - s_up ** 2)
        x = den + s_down * (x - den) / s + s_up * rng.standard_normal((n, d))
        x = x - ZETA * grad
    return x
