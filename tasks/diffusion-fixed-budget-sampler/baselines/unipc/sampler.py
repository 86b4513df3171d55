import math

import numpy as np


def logsnr_sigmas(n, sigma_min, sigma_max):
    """n noise levels uniform in log-SNR (lambda = -log sigma), sigma_max down to sigma_min."""
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), n))


def _unipc_step(denoise, x, models, lams, lam_t, sig_prev, sig_t, order, use_corrector):
    """One UniPC step (Zhao et al. 2023, data prediction, B(h) = e^h - 1 'bh2'):
    UniP-`order` predictor, then the UniC corrector, whose denoiser call at the new point is
    reused by the next step (so the corrector costs no extra evaluation)."""
    m0, l0 = models[-1], lams[-1]
    h = lam_t - l0
    rks, D1s = [], []
    for i in range(1, order):
        rk = (lams[-(i + 1)] - l0) / h
        rks.append(rk)
        D1s.append((models[-(i + 1)] - m0) / rk)
    rks.append(1.0)
    rks = np.array(rks)
    hh = -h
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1.0
    B_h = math.expm1(hh)
    factorial = 1
    R, b = [], []
    for i in range(1, order + 1):
        R.append(rks ** (i - 1))
        b.append(h_phi_k * factorial / B_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    R, b = np.array(R), np.array(b)
    x_lin = (sig_t / sig_prev) * x - h_phi_1 * m0
    if D1s:
        rhos_p = np.array([0.5]) if order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
        x_t = x_lin - B_h * sum(r * d for r, d in zip(rhos_p, D1s))
    else:
        x_t = x_lin
    model_t = None
    if use_corrector:
        rhos_c = np.array([0.5]) if order == 1 else np.linalg.solve(R, b)
        model_t = denoise(x_t, sig_t)
        corr = sum(r * d for r, d in zip(rhos_c[:-1], D1s)) if D1s else 0.0
        x_t = x_lin - B_h * (corr + rhos_c[-1] * (model_t - m0))
    return x_t, model_t


def sample(denoise, shape, nfe, sigma_min, sigma_max, rng, order=2):
    """UniPC-2 (bh2) multistep predictor-corrector, steps uniform in log-SNR, lower order at the
    final steps, no corrector after the last step: nfe steps, one denoiser call each, ending at
    sigma_min. (Order 3 and the bh1 variant were measured worse on these problems.)"""
    sigmas = logsnr_sigmas(nfe + 1, sigma_min, sigma_max)
    lam = -np.log(sigmas)
    x = rng.standard_normal(shape) * sigmas[0]
    models, lams = [denoise(x, sigmas[0])], [lam[0]]
    for step in range(1, nfe + 1):
        step_order = step if step < order else min(order, nfe + 1 - step)
        use_corrector = step < nfe
        x, model_t = _unipc_step(denoise, x, models, lams, lam[step], sigmas[step - 1], sigmas[step],
                                 step_order, use_corrector)
        if step < nfe:
            models = (models + [model_t])[-order:]
            lams = (lams + [lam[step]])[-order:]
    return x
