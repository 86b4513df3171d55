import numpy as np

LAMBDA = 0.25  # weight of the diffusion regulariser (the paper's lambda)
LR = 0.1  # Adam step size
WEIGHTING = "linear"  # lambda_t = LAMBDA * sigma_t / alpha_t (the paper's inverse-SNR weights)
INIT = "pinv"  # mu_0 = the pseudo-inverse of y (the official code) or "zeros" (InverseBench)


def edm_sigmas(n, sigma_min, sigma_max, rho=7.0):
    """Karras et al. (2022) noise levels: n values from sigma_max down to sigma_min."""
    ramp = np.linspace(0.0, 1.0, n)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def solve(model, A, y, noise_std, nfe, rng):
    """RED-diff (Mardani, Song, Kautz & Vahdat 2024 ICLR, "A variational perspective on solving
    inverse problems with diffusion models"), Algorithm 1. The posterior is approximated by
    q(x0 | y) = N(mu, sigma_q^2 I) with sigma_q -> 0, and mu minimises
        ||y - A mu||^2 / 2 + sum_t lambda_t E_eps ||eps_hat(x_t; sigma_t) - eps||^2,
    x_t = mu + sigma_t eps, by stochastic optimisation with time annealing (sigma_t from large
    to small, one noise draw per step) and a stop-gradient through the network, so the
    regulariser's gradient is lambda_t (eps_hat - eps) = lambda_t (mu - D(x_t; sigma_t)) / sigma_t
    (regularisation by denoising) and no backward pass is needed: 1 NFE per step, `nfe` steps.
    lambda_t = LAMBDA * sigma_t / alpha_t (the inverse square-root SNR weights; alpha_t = 1 in
    the VE parametrisation), Adam with betas (0.9, 0.99), mu_0 the noise-regularised
    pseudo-inverse A^T (A A^T + s^2 I)^-1 y. Each sample row is its own optimisation; the rows of
    one measurement differ only through their noise draws."""
    n, d = model.shape
    m = A.shape[0]
    sigmas = edm_sigmas(nfe, model.sigma_min, model.sigma_max)
    if INIT == "pinv":
        mu = y @ np.linalg.solve(A @ A.T + noise_std**2 * np.eye(m), A)
    else:
        mu = np.zeros((n, d))
    m1, m2 = np.zeros((n, d)), np.zeros((n, d))
    b1, b2 = 0.9, 0.99
    for i in range(nfe):
        s = sigmas[i]
        eps = rng.standard_normal((n, d))
        den = model.denoise(mu + s * eps, s)
        lam = LAMBDA * s if WEIGHTING == "linear" else LAMBDA
        grad = (mu @ A.T - y) @ A + lam * (mu - den) / s
        m1 = b1 * m1 + (1.0 - b1) * grad
        m2 = b2 * m2 + (1.0 - b2) * grad * grad
        step = (m1 / (1.0 - b1 ** (i + 1))) / (np.sqrt(m2 / (1.0 - b2 ** (i + 1))) + 1e-8)
        mu = mu - LR * step
    return mu
