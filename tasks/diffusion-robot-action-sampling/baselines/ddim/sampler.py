import math

import numpy as np


def sample(denoise, shape, nfe, rng):
    """DDIM (Song, Meng & Ermon 2021), eta = 0: the deterministic probability-flow update
    x_s = alpha_s x0_hat + sigma_s eps_hat, `nfe` steps strided uniformly in t, x0_hat clipped to
    [-1, 1] and eps_hat recomputed from the clipped x0_hat (as diffusers' DDIMScheduler does);
    the last step returns x0_hat."""
    ts = np.linspace(T_MAX, 0.0, nfe + 1)
    x = rng.standard_normal(shape)
    for i in range(nfe):
        t, s = ts[i], ts[i + 1]
        a_t, s_t = alpha(t), sigma(t)
        eps = denoise(x, t)
        x0 = np.clip((x - s_t * eps) / a_t, -1.0, 1.0)
        if s <= 0.0:
            return x0
        eps = (x - a_t * x0) / s_t
        x = alpha(s) * x0 + sigma(s) * eps
    return x
