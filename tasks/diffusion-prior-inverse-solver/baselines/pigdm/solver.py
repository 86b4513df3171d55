import math

import numpy as np


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def solve(model, A, y, noise_std, nfe, rng):
    """Pseudoinverse-guided diffusion (PiGDM, Song, Vahdat, Mardani & Kautz 2023 ICLR) with the
    noisy-measurement guidance: p(x0 | x_t) ~ N(x0_hat, r_t^2 I), r_t^2 = sigma^2 / (1 + sigma^2),
    so grad log p(y | x_t) ~ J^T A^T (r_t^2 A A^T + s^2 I)^-1 (y - A x0_hat). Added to the score
    (equivalently x0_hat += sigma^2 * guidance), followed by an ancestral (eta = 1) step. Each step
    needs D and one backward pass (2 NFE), so nfe // 2 steps; the last goes to sigma = 0."""
    n, d = model.shape
    m = A.shape[0]
    AAt = A @ A.T
    steps = nfe // 2
    sigmas = np.append(edm_sigmas(steps, model.sigma_min, model.sigma_max), 0.0)
    x = rng.standard_normal((n, d)) * sigmas[0]
    for i in range(steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = model.denoise(x, s)
        r2 = s * s / (1.0 + s * s)
        res = np.linalg.solve(r2 * AAt + noise_std ** 2 * np.eye(m), (y - den @ A.T).T).T
        guide = model.vjp(res @ A)                                  # grad_x log p(y | x)
        den = den + s * s * guide
        s_up = math.sqrt(s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2)
        s_down = math.sqrt(s_next ** 2 - s_up ** 2)
        x = den + s_down * (x - den) / s + s_up * rng.standard_normal((n, d))
    return x
