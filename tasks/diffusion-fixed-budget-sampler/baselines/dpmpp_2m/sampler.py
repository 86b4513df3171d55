import math

import numpy as np


def logsnr_sigmas(n, sigma_min, sigma_max):
    """n noise levels uniform in log-SNR (lambda = -log sigma), sigma_max down to sigma_min."""
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))


def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    """DPM-Solver++(2M) (Lu et al. 2022): multistep second-order exponential integrator in the
    data-prediction (denoiser) parameterisation, steps uniform in log-SNR as the paper uses for
    pixel-space models. nfe steps from sigma_max to sigma_min, one denoiser call each; the
    output is the state at sigma_min (no final denoising call, the paper's default)."""
    sigmas = logsnr_sigmas(nfe + 1, sigma_min, sigma_max)
    x = rng.standard_normal(shape) * sigmas[0]
    prev = None
    for i in range(nfe):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = denoise(x, s)
        h = math.log(s) - math.log(s_next)
        if prev is None:
            d = den
        else:
            r = (math.log(sigmas[i - 1]) - math.log(s)) / h
            d = (1.0 + 1.0 / (2.0 * r)) * den - (1.0 / (2.0 * r)) * prev
        x = (s_next / s) * x - math.expm1(-h) * d
        prev = den
    return x
