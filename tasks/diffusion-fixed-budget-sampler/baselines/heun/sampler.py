import math

import numpy as np


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    """EDM deterministic sampler (Karras et al. 2022, Algorithm 1): Heun's 2nd-order method on
    the probability-flow ODE, EDM time steps (rho = 7), Euler for the last step to sigma = 0.
    N steps cost 2N - 1 denoiser calls, so N = (nfe + 1) // 2 steps fit the budget."""
    n_steps = (nfe + 1) // 2
    sigmas = np.append(edm_sigmas(n_steps, sigma_min, sigma_max), 0.0)
    x = rng.standard_normal(shape) * sigmas[0]
    for i in range(n_steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - denoise(x, s)) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            d_next = (x_next - denoise(x_next, s_next)) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next
    return x
