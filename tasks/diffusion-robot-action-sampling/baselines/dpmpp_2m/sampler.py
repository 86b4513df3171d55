import math

import numpy as np


def sample(denoise, shape, nfe, rng):
    """DPM-Solver++(2M) (Lu et al. 2022): multistep second-order exponential integrator of the
    probability-flow ODE in its data-prediction form, in lambda = log(alpha / sigma). Time steps
    uniform in t from T_MAX to T_MIN; the first step is first order and, with fewer than 15 steps,
    so is the last (diffusers' `lower_order_final`); x0_hat clipped to [-1, 1]."""
    ts = np.linspace(T_MAX, T_MIN, nfe + 1)
    lam = [math.log(alpha(t) / sigma(t)) for t in ts]
    x = rng.standard_normal(shape)
    x0_prev, h_prev = None, None
    for i in range(nfe):
        t, s = ts[i], ts[i + 1]
        eps = denoise(x, t)
        x0 = np.clip((x - sigma(t) * eps) / alpha(t), -1.0, 1.0)
        h = lam[i + 1] - lam[i]
        last = i == nfe - 1
        if x0_prev is None or (last and nfe < 15):
            d = x0
        else:
            r = h_prev / h
            d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
        x = (sigma(s) / sigma(t)) * x - alpha(s) * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x
