import math

import numpy as np


def sample(denoise, shape, nfe, rng):
    """UniPC (Zhao, Bai, Rao, Zhou & Lu, NeurIPS 2023) with B(h) = e^h - 1 (bh2), data
    prediction, order 2, as diffusers' UniPCMultistepScheduler: the predictor UniP is multistep
    (first order at the first and the last step), the corrector UniC refines every new point
    with the evaluation just made there, at no extra NFE (not after the last step). Time steps
    uniform in t from T_MAX to T_MIN; x0_hat clipped to [-1, 1]."""
    ts = np.linspace(T_MAX, T_MIN, nfe + 1)
    lam = [math.log(alpha(t) / sigma(t)) for t in ts]
    x = rng.standard_normal(shape)
    x_prev, m, order_prev = None, [], 1  # m: x0_hat of the past steps, oldest first
    for i in range(nfe):
        t = ts[i]
        m0 = np.clip((x - sigma(t) * denoise(x, t)) / alpha(t), -1.0, 1.0)
        if i > 0:  # UniC: correct x with the new evaluation (a trapezoid in lambda for order 1)
            h = lam[i] - lam[i - 1]
            base = (sigma(t) / sigma(ts[i - 1])) * x_prev - alpha(t) * math.expm1(-h) * m[-1]
            bh = math.expm1(-h)
            if order_prev == 1:
                corr = 0.5 * (m0 - m[-1])
            else:
                r1 = (lam[i - 2] - lam[i - 1]) / h
                hh = -h
                phi = math.expm1(hh) / hh - 1.0
                b = [phi / bh, (phi / hh - 0.5) * 2.0 / bh]
                rho = np.linalg.solve(np.array([[1.0, 1.0], [r1, 1.0]]), np.array(b))
                corr = rho[0] * (m[-2] - m[-1]) / r1 + rho[1] * (m0 - m[-1])
            x = base - alpha(t) * bh * corr
        m.append(m0)
        order = min(2, nfe - i, len(m))
        s, h = ts[i + 1], lam[i + 1] - lam[i]
        x_prev = x
        x = (sigma(s) / sigma(t)) * x - alpha(s) * math.expm1(-h) * m0  # UniP, first order
        if order == 2:
            r1 = (lam[i - 1] - lam[i]) / h
            x = x - alpha(s) * math.expm1(-h) * 0.5 * (m[-2] - m0) / r1
        order_prev = order
    return x
