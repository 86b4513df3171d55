import math

import numpy as np


def sample(denoise, shape, nfe, rng):
    """Rectified-flow-style Euler sampler (Liu, Gong & Liu 2023) on the probability-flow velocity
    of the same denoiser: in the straight interpolation y = x / (alpha + sigma) = (1 - s) x0 + s eps
    with s = sigma / (alpha + sigma), the velocity is dy/ds = eps - x0; `nfe` Euler steps uniform
    in s down to s = 0 (the last step returns x0_hat), x0_hat clipped to [-1, 1]."""
    def s_of(t):
        return sigma(t) / (alpha(t) + sigma(t))

    def t_of(s):
        return (2.0 / math.pi) * math.atan2(s, 1.0 - s)

    ss = np.linspace(s_of(T_MAX), 0.0, nfe + 1)
    x = rng.standard_normal(shape)
    y = x / (alpha(T_MAX) + sigma(T_MAX))
    for i in range(nfe):
        t = min(max(t_of(ss[i]), T_MIN), T_MAX)
        a_t, s_t = alpha(t), sigma(t)
        x = (a_t + s_t) * y
        eps = denoise(x, t)
        x0 = np.clip((x - s_t * eps) / a_t, -1.0, 1.0)
        eps = (x - a_t * x0) / s_t
        y = y + (ss[i + 1] - ss[i]) * (eps - x0)
    return y
